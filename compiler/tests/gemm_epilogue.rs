//! A kernel that only finishes a matrix product (bias, activation, residual) becomes the
//! product's epilogue: the plan has no kernel and no stored product for it, and the CPU backend
//! gives the interpreter's results. Forms the epilogue cannot express keep their kernel, but a
//! bias and residual the kernel adds wherever it reads the product move into the product.

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{Activation, FunctionPlan, MatMulEpilogue, Module, ModulePlan, Step};
use mlc_runtime::init_inputs;

mod common;
use common::{assert_close, bind, cpu_sessions, interpreter_and_cpu};

const SRC: &str = r#"
import std.nn.{Linear, LayerNorm}
import std.math.{gelu, silu, relu}

model Test {
  up = Linear(16, 24)
  up2 = Linear(16, 24)
  up3 = Linear(16, 24)
  down = Linear(24, 16)
  square = Linear(16, 16)
  square2 = Linear(16, 16)
  plain = Linear(16, 24, has_bias = false)
  square3 = Linear(16, 16)
  norm = LayerNorm(16)
  entry mlp(x: f32[B, T, 16]) {
    return y = down(gelu(up(x)))
  }
  entry acts(x: f32[B, T, 16]) {
    return a = silu(up(x)), b = tanh(up2(x)), c = sigmoid(plain(x))
  }
  entry residual(x: f32[B, T, 16]) {
    return y = x + square(x), z = gelu(square2(x)) + x
  }
  entry moved(x: f32[B, T, 16]) {
    return y = norm(x + square3(x))
  }
  entry kept(x: f32[B, T, 16]) {
    let h = up3(x)
    return a = relu(up(x)), b = up2(x) * 2.0, c = tanh(h) + sigmoid(h), d = plain(x)
  }
}
"#;

fn module() -> Module {
    compile_source_optimized("test.dsl", SRC, &LowerOptions::default())
        .unwrap_or_else(|e| panic!("the test program does not compile:\n{e}"))
}

/// The epilogues of an entry's products, and how many kernels it runs.
fn products(plan: &ModulePlan, entry: &str) -> (Vec<MatMulEpilogue>, usize) {
    let f: &FunctionPlan = plan.function(entry).expect("entry");
    let epilogues = f
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::MatMul { epilogue, .. } => Some(epilogue.clone()),
            _ => None,
        })
        .collect();
    let kernels = f.steps.iter().filter(|s| matches!(s, Step::Kernel { .. })).count();
    (epilogues, kernels)
}

#[test]
fn finishing_kernels_become_epilogues() {
    let plan = mlc_sched::plan_module(&module()).expect("plans");
    let text = mlc_ir::print_plan(&plan);
    let acts = |e: &[MatMulEpilogue]| e.iter().map(|e| e.activation).collect::<Vec<_>>();
    let with_bias = |e: &[MatMulEpilogue]| e.iter().filter(|e| e.bias.is_some()).count();
    let with_residual = |e: &[MatMulEpilogue]| e.iter().filter(|e| e.residual.is_some()).count();

    // gelu(x @ up^T + b) feeds the next product; down's bias finishes the output.
    let (e, kernels) = products(&plan, "mlp");
    assert_eq!(kernels, 0, "{text}");
    assert_eq!(acts(&e), [Activation::GeluErf, Activation::None], "{text}");
    assert_eq!(with_bias(&e), 2, "{text}");

    let (e, kernels) = products(&plan, "acts");
    assert_eq!(kernels, 0, "{text}");
    let mut a = acts(&e);
    a.sort_by_key(|a| a.name());
    assert_eq!(a, [Activation::Sigmoid, Activation::Silu, Activation::Tanh], "{text}");
    assert_eq!(with_bias(&e), 2, "{text}");

    // x + (x @ w^T + b) in either order, and gelu(...) + x.
    let (e, kernels) = products(&plan, "residual");
    assert_eq!(kernels, 0, "{text}");
    assert_eq!(with_residual(&e), 2, "{text}");
    assert_eq!(with_bias(&e), 2, "{text}");
    assert!(text.contains("= gelu(matmul b"), "{text}");

    // relu (NaN semantics differ from the kernels' epilogue), a scale and two functions of one
    // product keep their kernels, but the bias each adds moves into the product; a product
    // that is an output has nothing to fuse.
    let (e, kernels) = products(&plan, "kept");
    assert_eq!(e.len(), 4, "{text}");
    assert_eq!(with_bias(&e), 3, "{text}");
    assert!(
        e.iter()
            .all(|e| e.activation == Activation::None && e.residual.is_none()),
        "{text}"
    );
    assert_eq!(kernels, 3, "{text}");

    // A layer norm of `x + (x @ w^T + b)` reads the sum in each of its three passes: bias and
    // residual move into the product, and the kernel reads the product alone (so the CPU
    // backend can run it as a row layer norm).
    let (e, kernels) = products(&plan, "moved");
    assert_eq!((with_bias(&e), with_residual(&e), kernels), (1, 1, 1), "{text}");
    let f = plan.function("moved").expect("moved");
    let norm = f
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Kernel { kernel, bufs, .. } => Some((&plan.kernels[*kernel as usize], bufs)),
            _ => None,
        })
        .expect("the norm's kernel");
    assert_eq!(
        norm.0.bufs.len(),
        4,
        "only x, weight, bias and the output are left:\n{text}"
    );
    assert!(mlc_ir::row_layer_norm(norm.0).is_some(), "{text}");
}

#[test]
fn epilogues_give_the_interpreters_results() {
    let m = module();
    let (weights, sessions) = cpu_sessions(&m, 7);
    for (threads, mut session) in sessions {
        // 1 x 3 rows takes the skinny path; 4 x 33 the blocked one with packed weights.
        for (b, t, seed) in [(1, 3, 1), (4, 33, 2), (2, 0, 3)] {
            let bind = bind(&[("B", b), ("T", t)]);
            for f in &m.functions {
                let inputs = init_inputs(f, &bind, seed).expect("inputs");
                for (name, w, g) in interpreter_and_cpu(&m, &weights, &mut session, &f.name, &inputs, &f.name) {
                    let what = format!("{}.{name} (B={b}, T={t}, {threads} threads)", f.name);
                    assert_close(&what, &w, &g, 1e-5);
                }
            }
        }
    }
}
