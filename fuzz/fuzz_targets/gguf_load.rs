//! The GGUF reader on arbitrary bytes: parse and validate, then dequantise every tensor.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlc_runtime::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    for (key, value) in file.metadata() {
        let _ = (key.len(), value.type_description());
    }
    for info in file.tensors() {
        if let Ok(t) = file.tensor(info.name()) {
            assert_eq!(t.shape(), info.shape());
            assert_eq!(t.numel(), info.numel());
        }
    }
});
