use std::path::PathBuf;
use std::process::ExitCode;

use mlc_compiler::driver::{CompileError, compile_file};
use mlc_compiler::lower::LowerOptions;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let path = PathBuf::from(&args[2]);
    match compile_file(&path, &LowerOptions::default()) {
        Ok(c) => {
            print!("{}", mlc_ir::print_module(&c.module));
            ExitCode::SUCCESS
        }
        Err(CompileError::Internal(e)) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(1)
        }
    }
}
