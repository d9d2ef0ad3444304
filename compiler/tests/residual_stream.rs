//! A residual stream (`h = h + f(norm(h))`, layer after layer) is stored every few layers
//! rather than summed again, over all earlier layers, inside every consumer's kernel: a value
//! that several consumers read is recomputed in each only while it loads at most two full-size
//! buffers. The CPU backend still gives the interpreter's results.

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{Access, KStmt, Module, Step};
use mlc_runtime::init_inputs;

mod common;
use common::{assert_close, bind, cpu_sessions, interpreter_and_cpu};

const SRC: &str = r#"
import std.nn.{Linear, RMSNorm}

block Layer(d: int) {
  norm = RMSNorm(d)
  proj = Linear(d, d, has_bias = false)
  fn forward(h) = h + proj(norm(h))
}

model Deep {
  layers = repeat(8) Layer(16)
  final = RMSNorm(16)
  entry forward(x: f32[B, T, 16]) {
    return y = final(layers(x))
  }
}
"#;

fn module() -> Module {
    compile_source_optimized("deep.dsl", SRC, &LowerOptions::default())
        .unwrap_or_else(|e| panic!("the test program does not compile:\n{e}"))
}

#[test]
fn no_kernel_sums_the_whole_stream() {
    let m = module();
    let plan = mlc_sched::plan_module(&m).expect("plans");
    let text = mlc_ir::print_plan(&plan);
    let f = plan.function("forward").expect("forward");
    let mut norms = 0;
    for s in &f.steps {
        let Step::Kernel { kernel, bufs, .. } = s else { continue };
        let k = &plan.kernels[*kernel as usize];
        // Full-size reads: [B, T, 16] buffers (the norm weights are [16]).
        let streams = k
            .bufs
            .iter()
            .zip(bufs)
            .filter(|(kb, b)| kb.access == Access::Read && f.bufs[**b as usize].ty.shape.len() == 3)
            .count();
        assert!(streams <= 3, "kernel `{}` reads {streams} streams:\n{text}", k.name);
        norms += usize::from(k.body.iter().any(|s| matches!(s, KStmt::Acc { .. })));
    }
    assert_eq!(norms, 9, "the nine norms are kernels:\n{text}");
}

#[test]
fn the_deep_model_gives_the_interpreters_results() {
    let m = module();
    let (weights, sessions) = cpu_sessions(&m, 3);
    for (threads, mut session) in sessions {
        for (b, t, seed) in [(1, 1, 1), (2, 5, 2)] {
            let inputs = init_inputs(&m.functions[0], &bind(&[("B", b), ("T", t)]), seed).expect("inputs");
            let what = format!("B={b}, T={t}, {threads} threads");
            for (name, w, g) in interpreter_and_cpu(&m, &weights, &mut session, "forward", &inputs, &what) {
                assert_close(&format!("{name} ({what})"), &w, &g, 1e-5);
            }
        }
    }
}
