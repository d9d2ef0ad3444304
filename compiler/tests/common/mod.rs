//! Helpers shared by the integration tests that run the `mlc` command, read the example
//! models or compare the CPU backend with the interpreter. Each test crate uses a part of them.
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

/// Runs entry `entry` of `m` on `inputs` through the interpreter and through `session`: each
/// output's name with the interpreter's value and the CPU backend's, after checking that both
/// backends return the same outputs with the same shapes and dtypes. `what` names the run in
/// failure messages.
pub fn interpreter_and_cpu(
    m: &mlc_ir::Module,
    weights: &mlc_runtime::Weights,
    session: &mut mlc_runtime::Session,
    entry: &str,
    inputs: &[(String, mlc_runtime::Tensor)],
    what: &str,
) -> Vec<(String, mlc_runtime::Tensor, mlc_runtime::Tensor)> {
    let want = mlc_runtime::run(m, entry, weights, inputs, &mlc_runtime::RunOptions::default())
        .unwrap_or_else(|e| panic!("{what} fails in the interpreter: {e}"));
    let got = session
        .run(entry, inputs)
        .unwrap_or_else(|e| panic!("{what} fails on the CPU backend: {e}"));
    assert_eq!(want.len(), got.len(), "{what}: output count");
    want.into_iter()
        .zip(got)
        .map(|((name, w), (got_name, g))| {
            assert_eq!(name, got_name, "{what}: output names");
            assert_eq!(w.shape(), g.shape(), "{what} output {name}");
            assert_eq!(w.dtype(), g.dtype(), "{what} output {name}");
            (name, w, g)
        })
        .collect()
}

/// Dim bindings from `(name, size)` pairs.
pub fn bind(pairs: &[(&str, i64)]) -> mlc_ir::Bindings {
    pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
}

/// Seeded random weights (`seed`) for `m`, and sessions of a CPU model of it at 1 and 2
/// threads.
pub fn cpu_sessions(m: &mlc_ir::Module, seed: u64) -> (mlc_runtime::Weights, Vec<(usize, mlc_runtime::Session)>) {
    let weights = mlc_runtime::Weights::from_tensors(m, mlc_runtime::init_weights(m, seed)).expect("weights");
    let mut model = mlc_runtime::Model::from_module(m.clone()).expect("model");
    model.set_weights(weights.clone());
    let sessions = [1, 2]
        .into_iter()
        .map(|threads| {
            let mut session = model.session().expect("session");
            session.set_threads(threads);
            (threads, session)
        })
        .collect();
    (weights, sessions)
}

/// Asserts that every element of `got` is within `tol * (1 + |want|)` of `want`'s (`what`
/// names the output in the message).
pub fn assert_close(what: &str, want: &mlc_runtime::Tensor, got: &mlc_runtime::Tensor, tol: f64) {
    for (i, (a, c)) in want.to_f64_vec().iter().zip(got.to_f64_vec()).enumerate() {
        assert!(
            (a - c).abs() <= tol * (1.0 + a.abs()),
            "{what}[{i}]: interpreter {a}, cpu {c}"
        );
    }
}

/// Compiles a test program (`file` names it in messages) with the default options, through the
/// whole pipeline; panics with the diagnostics if it does not compile.
pub fn compile(file: &str, src: &str) -> mlc_ir::Module {
    mlc_compiler::driver::compile_source_optimized(file, src, &mlc_compiler::lower::LowerOptions::default())
        .unwrap_or_else(|e| panic!("the test program does not compile:\n{e}"))
}

/// Runs `entry` on `inputs` through the interpreter and through each session, and asserts every
/// output of every session within `tol` of the interpreter's (see [`assert_close`]).
pub fn assert_sessions_agree(
    m: &mlc_ir::Module,
    weights: &mlc_runtime::Weights,
    sessions: &mut [(usize, mlc_runtime::Session)],
    entry: &str,
    inputs: &[(String, mlc_runtime::Tensor)],
    tol: f64,
    what: &str,
) {
    for (threads, session) in sessions {
        let what = format!("{what}, {threads} threads");
        for (name, want, got) in interpreter_and_cpu(m, weights, session, entry, inputs, &what) {
            assert_close(&format!("{what}: {name}"), &want, &got, tol);
        }
    }
}
