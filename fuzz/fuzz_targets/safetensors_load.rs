//! The safetensors reader on arbitrary bytes: parse the header, then read every tensor.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlc_runtime::safetensors_io;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = safetensors_io::from_bytes("fuzz.safetensors", data.to_vec()) else {
        return;
    };
    for name in file.names() {
        let _ = file.type_string(name);
        if let Ok(t) = file.get(name) {
            assert_eq!(Some(t.shape()), file.shape(name));
        }
    }
});
