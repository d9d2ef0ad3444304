//! Attention composed by `std.attention.attention` is planned as one attention step (the
//! blocked kernel, no `[B, H, Tq, Tk]` score buffer) and runs on the CPU backend as the
//! interpreter runs the composition.

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{Dim, FunctionPlan, Module, Step};
use mlc_runtime::{Model, Weights, init_inputs};

mod common;
use common::{bind, interpreter_and_cpu};

const SRC: &str = r#"
import std.attention.{attention, split_heads}

model Test {
entry gqa(q: f32[B, 4, S, 8], k: f32[B, 2, T, 8], v: f32[B, 2, T, 8], kp: bool[B, T]) {
  return o = attention(q, k, v, causal = true, key_padding = kp)
}
entry masks(q: f32[B, 4, S, 8], k: f32[B, 2, T, 8], v: f32[B, 2, T, 8], kp: bool[B, T], m: bool[B, 1, S, T]) {
  return o = attention(q, k, v, causal = true, mask = m, key_padding = kp)
}
entry additive(q: f32[B, 4, S, 8], k: f32[B, 4, T, 8], v: f32[B, 4, T, 8], m: f32[S, T]) {
  return o = attention(q, k, v, mask = m, scale = 0.3)
}
entry heads(x: f32[B, S, 32], y: f32[B, T, 16], kp: bool[B, T]) {
  let q = split_heads(x, 4)
  let k = split_heads(y, 2)
  return o = attention(q, k, split_heads(y * 0.5, 2), key_padding = kp)
}
entry weights_out(q: f32[B, 4, S, 8], k: f32[B, 4, T, 8], v: f32[B, 4, T, 8]) {
  let o = attention(q, k, v)
  return o = o, o2 = attention(q, k, v, causal = true) * 2.0
}
}
"#;

fn module() -> Module {
    compile_source_optimized("test.dsl", SRC, &LowerOptions::default())
        .unwrap_or_else(|e| panic!("the test program does not compile:\n{e}"))
}

fn attention_steps(f: &FunctionPlan) -> Vec<&Step> {
    f.steps.iter().filter(|s| matches!(s, Step::Attention { .. })).collect()
}

#[test]
fn attention_is_one_step_without_a_score_buffer() {
    let m = module();
    let plan = mlc_sched::plan_module(&m).expect("plans");
    for (entry, n_steps) in [
        ("gqa", 1),
        ("masks", 1),
        ("additive", 1),
        ("heads", 1),
        ("weights_out", 2),
    ] {
        let f = plan.function(entry).expect("entry");
        let text = mlc_ir::print_plan(&plan);
        assert_eq!(attention_steps(f).len(), n_steps, "{entry}:\n{text}");
        // No buffer of the scores' shape [B, H, S, T].
        for b in &f.bufs {
            let s = &b.ty.shape;
            let scores = s.len() == 4 && s[2] == Dim::sym("S") && s[3] == Dim::sym("T");
            assert!(
                !scores || s[1] == Dim::c(1),
                "{entry}: a score-shaped buffer {}:\n{text}",
                b.ty
            );
        }
    }
    // Grouped-query heads: the un-repeated keys and values, the causal mask as a flag, the key
    // padding as the boolean mask.
    let f = plan.function("gqa").expect("entry");
    let Step::Attention {
        k,
        v,
        causal,
        bool_mask,
        additive_mask,
        ..
    } = attention_steps(f)[0]
    else {
        unreachable!()
    };
    assert!(*causal);
    assert!(bool_mask.is_some() && additive_mask.is_none());
    assert_eq!(f.bufs[*k as usize].ty.shape[1], Dim::c(2));
    assert_eq!(f.bufs[*v as usize].ty.shape[1], Dim::c(2));
    assert!(f.inputs.contains(k) && f.inputs.contains(v));
}

#[test]
fn attention_step_matches_the_interpreter() {
    let m = module();
    let weights = Weights::from_tensors(&m, vec![]).expect("no weights");
    let mut model = Model::from_module(m.clone()).expect("model");
    model.set_weights(weights.clone());
    let mut session = model.session().expect("session");
    for (b, s, t, seed) in [(2, 5, 7, 1), (1, 7, 7, 2), (3, 70, 130, 3), (2, 1, 9, 4)] {
        let bind = bind(&[("B", b), ("S", s), ("T", t)]);
        for f in &m.functions {
            let inputs = init_inputs(f, &bind, seed).expect("inputs");
            for (name, w, g) in interpreter_and_cpu(&m, &weights, &mut session, &f.name, &inputs, &f.name) {
                let (w, g) = (w.to_f64_vec(), g.to_f64_vec());
                let scale = w.iter().filter(|x| x.is_finite()).fold(1.0f64, |m, x| m.max(x.abs()));
                for (i, (a, c)) in w.iter().zip(&g).enumerate() {
                    assert!(
                        (a - c).abs() <= 1e-5 * scale,
                        "{}.{name}[{i}] (B={b}, S={s}, T={t}): interpreter {a}, cpu {c}",
                        f.name
                    );
                }
            }
        }
    }
}
