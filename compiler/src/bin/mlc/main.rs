//! The `mlc` command: check, inspect, build and run models written in the mlc language.
//!
//! Exit status: 0 on success, 1 for an error in the user's input (program, weights, inputs,
//! files, flags), 2 for an internal error (a bug in mlc, panics included).

mod aot;
mod bench;
mod commands;
mod options;

use std::process::ExitCode;

use clap::Parser;

use options::{Cli, Command};

/// Why a command failed, which decides the exit status.
#[derive(Debug)]
pub enum CliError {
    /// Something wrong in what the user gave us: exit status 1.
    User(String),
    /// A bug in mlc: exit status 2.
    Internal(String),
}

impl CliError {
    pub fn user(msg: impl Into<String>) -> CliError {
        CliError::User(msg.into())
    }
}

impl From<mlc_compiler::driver::CompileError> for CliError {
    fn from(e: mlc_compiler::driver::CompileError) -> CliError {
        use mlc_compiler::driver::CompileError;
        match e {
            CompileError::Internal(m) => CliError::Internal(m),
            other => CliError::User(other.to_string()),
        }
    }
}

impl From<mlc_runtime::RuntimeError> for CliError {
    fn from(e: mlc_runtime::RuntimeError) -> CliError {
        CliError::User(format!("error: {e}"))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A panic is a bug; report it as an internal error with status 2 rather than an abort.
    std::panic::set_hook(Box::new(|info| {
        // A closed pipe (`mlc dump-ir ... | head`) is not an error of mlc's: stop quietly.
        if info.to_string().contains("failed printing to stdout") {
            std::process::exit(0);
        }
        eprintln!(
            "internal error: mlc panicked: {info}\nThis is a bug in mlc; please report it with the input that caused it."
        );
    }));
    let result = std::panic::catch_unwind(|| run(cli));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(CliError::User(msg))) => {
            eprint!("{}", with_newline(&msg));
            ExitCode::from(1)
        }
        Ok(Err(CliError::Internal(msg))) => {
            eprint!("{}", with_newline(&format!("internal error: {msg}")));
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(2),
    }
}

fn with_newline(s: &str) -> String {
    if s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Check(a) => commands::check(&a),
        Command::DumpIr(a) => commands::dump_ir(&a),
        Command::Dot(a) => commands::dot(&a),
        Command::InitWeights(a) => commands::init_weights(&a),
        Command::InitInputs(a) => commands::init_inputs(&a),
        Command::Build(a) => commands::build(&a),
        Command::Run(a) => commands::run(&a),
        Command::Bench(a) => bench::bench(&a),
    }
}
