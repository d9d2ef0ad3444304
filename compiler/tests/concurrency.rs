//! One shared `Model` run from 8 threads × 200 runs each, every run with its own inputs (and
//! shapes: the sequence length varies, so sessions re-plan their arenas as they go), every output
//! compared bit for bit with a single-threaded run of the same inputs.

use std::sync::Arc;

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_runtime::tensor::Data;
use mlc_runtime::{Model, Tensor, Weights, init_weights};

const THREADS: usize = 8;
const RUNS_PER_THREAD: usize = 200;

/// A small decoder: an MLP and a causal, grouped-query attention layer with key padding.
const MODEL: &str = r#"
import std.attention
import std.nn.{Linear, RMSNorm, SwiGLU}

block Layer(d: int, heads: int, kv_heads: int) {
  let dh = d / heads
  norm = RMSNorm(d)
  q_proj = Linear(d, d, has_bias = false)
  k_proj = Linear(d, kv_heads * dh, has_bias = false)
  v_proj = Linear(d, kv_heads * dh, has_bias = false)
  o_proj = Linear(d, d, has_bias = false)
  mlp = SwiGLU(d, 2 * d)

  fn forward(x, pos, real) {
    let h = norm(x)
    let q = rope(split_heads(q_proj(h), heads), pos)
    let k = rope(split_heads(k_proj(h), kv_heads), pos)
    let v = split_heads(v_proj(h), kv_heads)
    let x = x + o_proj(merge_heads(attention(q, k, v, causal = true, key_padding = real)))
    return x + mlp(x)
  }
}

model Stress(d: int = 16, heads: int = 4) {
  inp = Linear(d, d)
  layer = Layer(d, heads, 2)
  out = Linear(d, 5)

  entry forward(x: f32[B, T, d], real: bool[B, T]) {
    let h = layer(maximum(inp(x), 0.0), arange(T), real)
    return out(h), sum(h, axis = -1)
  }
}
"#;

/// The inputs of run `i`: `B = 2`, `T` from 1 to 7, values from a small LCG seeded by `i`.
fn inputs(i: usize) -> Vec<(String, Tensor)> {
    let (b, t, d) = (2, 1 + i % 7, 16);
    let mut state = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let x: Vec<f32> = (0..b * t * d).map(|_| (next() % 2001) as f32 / 1000.0 - 1.0).collect();
    // At least the first position of each row is real (a fully padded row is all -inf).
    let real: Vec<bool> = (0..b * t).map(|k| k % t == 0 || next() % 4 != 0).collect();
    vec![
        ("x".to_string(), Tensor::from_f32(&[b, t, d], x)),
        ("real".to_string(), Tensor::from_bool(&[b, t], real)),
    ]
}

/// Outputs as names, shapes and bit patterns.
fn bits(outputs: &[(String, Tensor)]) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    outputs
        .iter()
        .map(|(n, t)| {
            let Data::F32(v) = t.data() else {
                panic!("output `{n}` is not f32")
            };
            (n.clone(), t.shape().to_vec(), v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

#[test]
fn one_model_eight_threads_identical_bits() {
    let module = compile_source_optimized("stress.dsl", MODEL, &LowerOptions::default()).unwrap();
    let weights = Weights::from_tensors(&module, init_weights(&module, 7)).unwrap();
    let mut model = Model::from_module(module).unwrap();
    model.set_weights(weights);

    // The reference: one session, one thread, every input in turn.
    let total = THREADS * RUNS_PER_THREAD;
    let mut reference = model.session().unwrap();
    reference.set_threads(1);
    let expected: Vec<_> = (0..total)
        .map(|i| bits(&reference.run("forward", &inputs(i)).unwrap()))
        .collect();
    // The inputs matter (a model that ignored them would pass trivially).
    let distinct: std::collections::HashSet<_> = expected.iter().collect();
    assert!(distinct.len() > total / 2, "only {} distinct outputs", distinct.len());
    assert!(
        expected
            .iter()
            .flatten()
            .flat_map(|o| &o.2)
            .all(|b| f32::from_bits(*b).is_finite())
    );

    let expected = Arc::new(expected);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (model, expected) = (model.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut session = model.session().unwrap();
                // Half the threads also split their runs over a thread pool of their own.
                session.set_threads(1 + t % 2);
                let mut mismatches = Vec::new();
                // Interleaved: thread t runs t, t + 8, t + 16, ...
                for r in 0..RUNS_PER_THREAD {
                    let i = r * THREADS + t;
                    let got = bits(&session.run("forward", &inputs(i)).unwrap());
                    if got != expected[i] {
                        mismatches.push(i);
                    }
                }
                mismatches
            })
        })
        .collect();
    let mismatches: Vec<usize> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    eprintln!(
        "concurrency: {THREADS} threads × {RUNS_PER_THREAD} runs on one model, {total} outputs compared bit for bit"
    );
    assert!(
        mismatches.is_empty(),
        "runs whose bits differ from the single-threaded run: {mismatches:?}"
    );
}
