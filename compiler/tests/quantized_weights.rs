//! Linear weights with a block-quantised copy (`Weights::attach_quantized`): products with few
//! rows (up to 4 here) read the blocks and still agree with the interpreter (which reads the f32 values), the
//! epilogue included; longer products keep the f32 path; a copy that is not the weight's values
//! is refused.

use mlc_ir::Module;
use mlc_runtime::{Model, QuantFormat, QuantMatrix, Tensor, WeightError, Weights, init_inputs};

mod common;
use common::{assert_close, bind, compile, interpreter_and_cpu};

const SRC: &str = r#"
import std.nn.{Linear}
import std.math.{silu}

model Test {
  up = Linear(64, 96)
  down = Linear(96, 64, has_bias = false)
  head = Linear(64, 40, has_bias = false)
  entry step(x: f32[T, 64]) {
    let h = x + down(silu(up(x)))
    return y = head(h)
  }
}
"#;

/// A `rows x cols` matrix of random blocks (xorshift from `seed`) with values centred on 0, as
/// in trained weights: scales in [0.01, 0.03), minimums near `-7.5` scales (Nibble).
fn blocks(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> QuantMatrix {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let count = rows * cols / 32;
    let scales: Vec<f32> = (0..count).map(|_| 0.01 + 0.02 * next()).collect();
    let mins = if format.has_min() {
        scales.iter().map(|d| -7.5 * d + 0.01 * (next() - 0.5)).collect()
    } else {
        Vec::new()
    };
    let quants = (0..count * format.quant_bytes())
        .map(|_| (next() * 256.0) as u8)
        .collect();
    QuantMatrix::new(format, rows, cols, scales, mins, quants).expect("consistent parts")
}

/// Named tensors, and named block-quantised copies.
type Named<T> = Vec<(String, T)>;

/// Weights for the test model whose Linear weights are `blocks`' values, with their blocks.
fn quantized_weights(m: &Module) -> (Named<Tensor>, Named<QuantMatrix>) {
    let specs = [
        ("up.weight", QuantFormat::Nibble, 96, 64),
        ("down.weight", QuantFormat::Int8, 64, 96),
        ("head.weight", QuantFormat::Nibble, 40, 64),
    ];
    let mut tensors = mlc_runtime::init_weights(m, 3);
    let mut copies = Vec::new();
    for (i, (name, format, rows, cols)) in specs.into_iter().enumerate() {
        let q = blocks(format, rows, cols, 10 + i as u64);
        let slot = tensors.iter_mut().find(|(n, _)| n == name).expect("a declared weight");
        slot.1 = Tensor::from_f32(&[rows, cols], q.dequantize());
        copies.push((name.to_string(), q));
    }
    (tensors, copies)
}

#[test]
fn few_rows_read_the_blocks_and_agree_with_the_interpreter() {
    let m = compile("test.dsl", SRC);
    let (tensors, copies) = quantized_weights(&m);
    let plain = Weights::from_tensors(&m, tensors).expect("weights");
    let mut with_blocks = plain.clone();
    for (name, q) in copies {
        with_blocks
            .attach_quantized(&name, q)
            .expect("the blocks hold the weight's values");
    }
    let session_of = |w: &Weights, threads: usize| {
        let mut model = Model::from_module(m.clone()).expect("model");
        model.set_weights(w.clone());
        let mut s = model.session().expect("session");
        s.set_threads(threads);
        s
    };
    let step = m.function("step").expect("entry");
    // 1 to 4 rows read the blocks on every CPU; 16 and more never (`quantized_pays_off`).
    for t in [1, 3, 4, 16, 17, 40] {
        let inputs = init_inputs(step, &bind(&[("T", t)]), 5).expect("inputs");
        for threads in [1, 2] {
            let what = format!("T = {t}, {threads} threads");
            let mut blocked = session_of(&with_blocks, threads);
            let outs = interpreter_and_cpu(&m, &with_blocks, &mut blocked, "step", &inputs, &what);
            let (_, want, got) = &outs[0];
            assert_close(&what, want, got, 1e-5);
            // The same session without blocks runs the f32 kernels: a different order of
            // additions, so some bits differ exactly when the blocks were read.
            let mut f32_only = session_of(&plain, threads);
            let other = f32_only.run("step", &inputs).expect("runs")[0].1.to_f32_vec();
            let differs = got
                .to_f32_vec()
                .iter()
                .zip(&other)
                .any(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(differs, t <= 4, "{what}: blocks read = {differs}");
        }
    }
}

#[test]
fn a_copy_that_is_not_the_weight_is_refused() {
    let m = compile("test.dsl", SRC);
    let (tensors, copies) = quantized_weights(&m);
    let mut weights = Weights::from_tensors(&m, tensors).expect("weights");
    let (_, up) = &copies[0];
    // Another weight's shape.
    let err = weights.attach_quantized("head.weight", up.clone()).unwrap_err();
    assert!(matches!(err, WeightError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("f32[40, 64]"), "{err}");
    // Not a parameter.
    let err = weights.attach_quantized("nope.weight", up.clone()).unwrap_err();
    assert!(matches!(err, WeightError::Missing { .. }), "{err}");
    // The right shape, other values: element 0 of another random matrix differs.
    let other = blocks(QuantFormat::Nibble, 96, 64, 99);
    let err = weights.attach_quantized("up.weight", other).unwrap_err();
    assert!(
        matches!(err, WeightError::QuantizedDiffers { ref name, .. } if name == "up.weight"),
        "{err}"
    );
    // A rank-1 parameter.
    let err = weights.attach_quantized("up.bias", up.clone()).unwrap_err();
    assert!(matches!(err, WeightError::Mismatch { .. }), "{err}");
    weights
        .attach_quantized("up.weight", up.clone())
        .expect("the right copy");
}
