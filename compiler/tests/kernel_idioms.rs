//! Whole-kernel idioms: the kernels the scheduler generates for a softmax and a layer norm over
//! the last axis of a buffer are recognised as a row softmax and a row layer norm (which the
//! CPU backend runs through `mlc_kernels::softmax` and `mlc_kernels::norm`), near misses are
//! not, and the CPU backend gives the interpreter's results on rows of every kind (`-inf`,
//! `+inf`, NaN, odd lengths) at 1 and 2 threads.

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{IExpr, Module, ModulePlan, RowSoftmax, Step, row_layer_norm, row_softmax};
use mlc_runtime::Tensor;

mod common;
use common::{assert_close, cpu_sessions, interpreter_and_cpu};

const SRC: &str = r#"
import std.math.{softmax, log_softmax}
import std.nn.{LayerNorm, layer_norm, rms_norm}

model Idioms {
  norm = LayerNorm(37)
  wide = LayerNorm(1024, eps = 1e-3)
  entry norms(x: f32[N, 37], y: f32[N, 1024]) {
    return a = norm(x), b = wide(y)
  }
  entry near_norms(x: f32[N, 37], y: f32[N, 37]) {
    return a = norm(x + y), b = layer_norm(x, norm.weight, None), c = rms_norm(x, norm.weight)
  }
  entry rows(x: f32[N, D]) -> f32[N, D] {
    return softmax(x, axis = -1)
  }
  entry fixed(x: f32[N, 3, 37]) -> f32[N, 3, 37] {
    return softmax(x, axis = 2)
  }
  entry scaled(x: f32[N, D]) -> f32[N, D] {
    return softmax(x * 2.0, axis = -1)
  }
  entry columns(x: f32[N, D]) -> f32[N, D] {
    return softmax(x, axis = 0)
  }
  entry logs(x: f32[N, D]) -> f32[N, D] {
    return log_softmax(x, axis = -1)
  }
}
"#;

fn module() -> Module {
    compile_source_optimized("idioms.dsl", SRC, &LowerOptions::default())
        .unwrap_or_else(|e| panic!("the test program does not compile:\n{e}"))
}

/// The row softmaxes recognised among the kernels an entry runs, with the plan's buffers read
/// and written.
fn softmaxes(plan: &ModulePlan, entry: &str) -> Vec<(RowSoftmax, u32, u32)> {
    let f = plan.function(entry).expect("entry");
    f.steps
        .iter()
        .filter_map(|s| match s {
            Step::Kernel { kernel, bufs, .. } => {
                let k = &plan.kernels[*kernel as usize];
                row_softmax(k).map(|r| (r.clone(), bufs[r.input as usize], bufs[r.output as usize]))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn softmax_over_the_last_axis_is_recognised_and_near_misses_are_not() {
    let plan = mlc_sched::plan_module(&module()).expect("plans");
    let text = mlc_ir::print_plan(&plan);
    let f = plan.function("rows").expect("rows");
    let found = softmaxes(&plan, "rows");
    assert_eq!(found.len(), 1, "{text}");
    let (s, input, output) = &found[0];
    assert_eq!((*input, *output), (f.inputs[0], f.outputs[0].1), "{text}");
    assert!(matches!(s.row_len, IExpr::Dim(_)), "{text}");

    let found = softmaxes(&plan, "fixed");
    assert_eq!(found.len(), 1, "{text}");
    assert_eq!(found[0].0.row_len, IExpr::Const(37), "{text}");

    // A prologue (`x * 2`), another axis and another function keep their generated code.
    for entry in ["scaled", "columns", "logs"] {
        assert!(softmaxes(&plan, entry).is_empty(), "{entry}:\n{text}");
    }
}

/// The kernels an entry runs that are recognised as row layer norms: (row length, eps).
fn layer_norms(plan: &ModulePlan, entry: &str) -> Vec<(i64, f32)> {
    let f = plan.function(entry).expect("entry");
    f.steps
        .iter()
        .filter_map(|s| match s {
            Step::Kernel { kernel, .. } => row_layer_norm(&plan.kernels[*kernel as usize]).map(|l| (l.row_len, l.eps)),
            _ => None,
        })
        .collect()
}

#[test]
fn layer_norm_over_the_last_axis_is_recognised_and_near_misses_are_not() {
    let plan = mlc_sched::plan_module(&module()).expect("plans");
    let text = mlc_ir::print_plan(&plan);
    let mut found = layer_norms(&plan, "norms");
    found.sort_by_key(|f| f.0);
    assert_eq!(found, [(37, 1e-5), (1024, 1e-3)], "{text}");
    // A prologue (`x + y`), no bias, and RMS normalisation keep their generated code.
    assert!(layer_norms(&plan, "near_norms").is_empty(), "{text}");
    for entry in ["rows", "fixed", "scaled", "columns", "logs"] {
        assert!(layer_norms(&plan, entry).is_empty(), "{entry}:\n{text}");
    }
}

#[test]
fn recognised_layer_norm_gives_the_interpreters_results() {
    let m = module();
    let (weights, sessions) = cpu_sessions(&m, 11);
    for (threads, mut session) in sessions {
        for n in [0, 1, 3, 200] {
            let x = awkward_rows(n, 37)
                .iter()
                .map(|v| if v.is_finite() { *v } else { 0.5 })
                .collect();
            // Odd rows vary by about 0.01, so that eps (1e-3) dominates their variance.
            let y = (0..n * 1024)
                .map(|i| {
                    let v = ((i * 31) % 97) as f32;
                    if (i / 1024) % 2 == 0 {
                        v * 0.25 - 7.0
                    } else {
                        1.0 + v * 1e-4
                    }
                })
                .collect();
            let inputs = vec![
                ("x".to_string(), Tensor::from_f32(&[n, 37], x)),
                ("y".to_string(), Tensor::from_f32(&[n, 1024], y)),
            ];
            let what = format!("norms, {n} rows at {threads} threads");
            for (name, w, g) in interpreter_and_cpu(&m, &weights, &mut session, "norms", &inputs, &what) {
                assert_close(&format!("{what}: {name}"), &w, &g, 1e-5);
            }
        }
    }
}

/// Rows that exercise every branch of the semantics, `n` rows of `d`.
fn awkward_rows(n: usize, d: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n * d).map(|i| ((i * 7919) % 1000) as f32 / 50.0 - 10.0).collect();
    if n >= 4 && d >= 2 {
        x[..d].fill(f32::NEG_INFINITY); // a row of -inf: zeros
        x[d] = f32::NAN; // NaN: ignored by the maximum, NaN at its place
        x[2 * d + 1] = f32::INFINITY; // +inf: NaN everywhere its exp is
        x[3 * d] = -1e30; // far below the others: 0
    }
    x
}

#[test]
fn recognised_softmax_gives_the_interpreters_results() {
    let m = module();
    let (weights, sessions) = cpu_sessions(&m, 3);
    for (threads, mut session) in sessions {
        for (entry, n, d) in [
            ("rows", 6, 1),
            ("rows", 5, 17),
            ("rows", 300, 1024),
            ("rows", 0, 8),
            ("rows", 4, 0),
            ("fixed", 9, 0),
        ] {
            let (shape, len) = if entry == "fixed" {
                (vec![n, 3, 37], n * 3 * 37)
            } else {
                (vec![n, d], n * d)
            };
            let x = if entry == "fixed" {
                awkward_rows(n * 3, 37)
            } else {
                awkward_rows(n, d)
            };
            assert_eq!(x.len(), len);
            let inputs = vec![("x".to_string(), Tensor::from_f32(&shape, x))];
            let what = format!("{entry} {shape:?} at {threads} threads");
            for (name, w, g) in interpreter_and_cpu(&m, &weights, &mut session, entry, &inputs, &what) {
                for (i, (a, c)) in w.to_f64_vec().iter().zip(g.to_f64_vec()).enumerate() {
                    let same = a.is_nan() && c.is_nan() || (a - c).abs() <= 1e-6 * (1.0 + a.abs());
                    assert!(same, "{what}: {name}[{i}]: interpreter {a}, cpu {c}");
                }
            }
        }
    }
}
