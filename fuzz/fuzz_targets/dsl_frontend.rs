//! The language front end on arbitrary text: parse, load imports (the standard library), lower,
//! verify, and run the standard passes. Any input must give a module or diagnostics, never a
//! panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mlc_compiler::driver::{compile_source, optimize};
use mlc_compiler::lower::LowerOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(compiled) = compile_source("fuzz.dsl", text, &LowerOptions::default()) {
        let mut module = compiled.module;
        // The lowered module verified; the passes must keep it valid (an error is a bug too,
        // but the driver reports it as an internal error rather than panicking).
        let _ = optimize(&mut module);
    }
});
