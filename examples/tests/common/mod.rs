//! Helpers shared by the example models' integration tests (each test file does `mod common;`):
//! the example folders' files, compiling a model and binding its weights, running an entry
//! point, and comparing outputs with goldens. Not every test file uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mlc_examples::engine::{Backend, Engine, compile_entries};
use mlc_runtime::{Model, Tensor, TensorFile, safetensors_io};

/// Largest accepted error relative to the largest finite magnitude of the golden tensor.
pub const TOL: f64 = 1e-4;

/// `examples/<example>`.
pub fn example_dir(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(example)
}

/// The safetensors file `name` of `examples/<example>`.
pub fn load(example: &str, name: &str) -> TensorFile {
    safetensors_io::load(example_dir(example).join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The tensor `name` of `f`.
pub fn get(f: &TensorFile, name: &str) -> Tensor {
    f.get(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The text of `examples/<example>/model.dsl`.
pub fn model_dsl(example: &str) -> String {
    std::fs::read_to_string(example_dir(example).join("model.dsl")).expect("model.dsl")
}

/// `dsl` with `extra` (entries for the tests) inserted before its closing brace.
pub fn with_entries(dsl: &str, extra: &str) -> String {
    let end = dsl.rfind('}').expect("the model's closing brace");
    format!("{}{extra}\n}}\n", &dsl[..end])
}

/// `dsl` (named `name` in diagnostics) compiled with the overrides `set`, lowering only
/// `entries` (all when empty).
pub fn compile(name: &str, dsl: &str, set: &[(&str, String)], entries: &[&str]) -> Model {
    compile_entries(name, dsl, set, entries).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `model` with `weights` bound, run by `backend`.
pub fn engine(mut model: Model, weights: &TensorFile, backend: Backend) -> Engine {
    model.bind_weights(weights).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(model, backend).unwrap_or_else(|e| panic!("{e}"))
}

/// The named outputs of `entry` on `inputs`.
pub fn run(e: &mut Engine, entry: &str, inputs: &[(&str, Tensor)]) -> Vec<(String, Tensor)> {
    let inputs: Vec<(String, Tensor)> = inputs.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
    e.run(entry, &inputs).unwrap_or_else(|err| panic!("{entry}: {err}"))
}

/// The outputs of `entry` on `inputs`, in order, without their names.
pub fn run_values(e: &mut Engine, entry: &str, inputs: &[(&str, Tensor)]) -> Vec<Tensor> {
    run(e, entry, inputs).into_iter().map(|(_, t)| t).collect()
}

/// The output called `name`.
pub fn out<'a>(outs: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &outs
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no output `{name}`"))
        .1
}

/// max |got − want| / max |want| over the finite entries of `want`; infinities must agree
/// exactly.
pub fn rel_err_values(what: &str, got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: size");
    let scale = want
        .iter()
        .filter(|x| x.is_finite())
        .fold(1e-30f64, |m, x| m.max(x.abs()));
    let mut err = 0.0f64;
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        if b.is_finite() {
            err = err.max((a - b).abs() / scale);
        } else {
            assert_eq!(a, b, "{what}[{i}]: got {a}, want {b}");
        }
    }
    err
}

/// [`rel_err_values`] of two tensors of the same shape.
pub fn rel_err(what: &str, got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    rel_err_values(what, &got.to_f64_vec(), &want.to_f64_vec())
}

/// `got` is within [`TOL`] of `want` (relative error, printed).
pub fn check_values(what: &str, got: &[f64], want: &[f64]) {
    let err = rel_err_values(what, got, want);
    println!("{what}: relative error {err:.2e}");
    assert!(err <= TOL, "{what}: relative error {err:e} > {TOL:e}");
}

/// `got` has `want`'s shape and is within [`TOL`] of it (relative error, printed).
pub fn check(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    check_values(what, &got.to_f64_vec(), &want.to_f64_vec());
}

/// `got` equals `want` exactly, as integers.
pub fn check_exact(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert_eq!(got.to_i64_vec(), want.to_i64_vec(), "{what}");
}
