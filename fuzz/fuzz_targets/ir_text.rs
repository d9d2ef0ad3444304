//! The Graph IR text parser on arbitrary text. A module that parses and verifies must print to
//! text that parses again to the same module.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(module) = mlc_ir::parse_module(text) else {
        return;
    };
    if mlc_ir::verify_module(&module).is_err() {
        return;
    }
    let printed = mlc_ir::print_module(&module);
    let reparsed = mlc_ir::parse_module(&printed)
        .unwrap_or_else(|e| panic!("a verified module prints to text that does not parse: {e}\n{printed}"));
    assert_eq!(mlc_ir::print_module(&reparsed), printed, "printing is not stable");
});
