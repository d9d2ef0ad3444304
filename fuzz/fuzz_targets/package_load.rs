//! The package reader on arbitrary bytes, then planning and compiling what it accepts.
//!
//! A random body almost never matches its checksum, so the first byte chooses: 0 reads the
//! input as it is (the header and checksum checks); anything else puts the rest under a valid
//! header with its checksum, which exercises the IR parser, the verifier, the planner and the
//! JIT on whatever passes them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlc_runtime::{Model, package};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode == 0 {
        rest.to_vec()
    } else {
        let mut b = format!(
            "mlcpkg {}\nchecksum fnv1a64 {:016x}\n\n",
            package::FORMAT_VERSION,
            package::fnv1a64(rest)
        )
        .into_bytes();
        b.extend_from_slice(rest);
        b
    };
    if let Ok(module) = package::from_bytes(&bytes) {
        let _ = Model::from_module(module);
    }
});
