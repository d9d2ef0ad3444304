//! Helpers shared by the integration tests that run the `mlc` command or read the example
//! models. Each test crate uses a part of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The crate's folder; commands run there so that relative paths in messages are stable.
pub fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/tiny/model.dsl`.
pub fn tiny_path() -> PathBuf {
    crate_dir().join("../examples/tiny/model.dsl")
}

/// Runs `mlc ARGS` in the crate's folder.
pub fn mlc<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args(args)
        .current_dir(crate_dir())
        .output()
        .expect("mlc runs")
}
