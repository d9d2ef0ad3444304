//! Whole-kernel idioms: the kernel the scheduler generates for a softmax over the last axis of
//! a buffer is recognised as a row softmax (which the CPU backend runs through
//! `mlc_kernels::softmax`), near misses are not, and the CPU backend gives the interpreter's
//! results on rows of every kind (`-inf`, `+inf`, NaN, odd lengths) at 1 and 2 threads.

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{IExpr, Module, ModulePlan, RowSoftmax, Step, row_softmax};
use mlc_runtime::{Model, Tensor, Weights};

mod common;
use common::interpreter_and_cpu;

const SRC: &str = r#"
import std.math.{softmax, log_softmax}

model Idioms {
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
    let weights = Weights::from_tensors(&m, Vec::new()).expect("no weights");
    let mut model = Model::from_module(m.clone()).expect("model");
    model.set_weights(weights.clone());
    for threads in [1, 2] {
        let mut session = model.session().expect("session");
        session.set_threads(threads);
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
