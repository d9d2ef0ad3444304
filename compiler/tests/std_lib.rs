//! The standard library (`dsl/std/*.dsl`) checked against independent computations: each test
//! compiles a small model that imports `std`, runs it in the reference interpreter, and compares
//! with values worked out by hand or by a straightforward `f64` implementation here.
//!
//! The last tests compile every file under `dsl/std/` and `dsl/examples/` (the runnable snippets
//! of `dsl/LANGUAGE.md`) and run every entry of every example, so the reference never rots.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlc_compiler::driver::{compile_file, compile_source};
use mlc_compiler::lower::LowerOptions;
use mlc_ir::Module;
use mlc_kernels::{normal_f32, uniform_f32};
use mlc_runtime::{RunOptions, Tensor, Weights, init_inputs, init_weights, interp};

// ---------------------------------------------------------------- harness

fn compile(src: &str) -> Module {
    match compile_source("test.dsl", src, &LowerOptions::default()) {
        Ok(c) => c.module,
        Err(e) => panic!("the test program does not compile:\n{e}"),
    }
}

/// Runs `entry` with the given weights and inputs; returns the outputs by name.
fn run(
    module: &Module,
    entry: &str,
    weights: Vec<(&str, Tensor)>,
    inputs: Vec<(&str, Tensor)>,
) -> HashMap<String, Tensor> {
    let named = weights.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    let weights = Weights::from_tensors(module, named).unwrap_or_else(|e| panic!("weights do not bind: {e:?}"));
    let inputs: Vec<(String, Tensor)> = inputs.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
    let out = interp::run(module, entry, &weights, &inputs, &RunOptions::default())
        .unwrap_or_else(|e| panic!("running `{entry}` failed: {e}"));
    out.into_iter().collect()
}

fn f32s(out: &HashMap<String, Tensor>, name: &str) -> Vec<f32> {
    out.get(name)
        .unwrap_or_else(|| panic!("no output `{name}`"))
        .to_f32_vec()
}

fn shape_of<'a>(out: &'a HashMap<String, Tensor>, name: &str) -> &'a [usize] {
    out.get(name).unwrap_or_else(|| panic!("no output `{name}`")).shape()
}

/// `|got - want| <= tol * (1 + |want|)` elementwise; equal infinities match.
fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = f64::from(g);
        let ok = if w.is_infinite() || g.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * (1.0 + w.abs())
        };
        assert!(
            ok,
            "{what}[{i}]: got {g}, expected {w}\n  got:      {got:?}\n  expected: {want:?}"
        );
    }
}

const TOL: f64 = 1e-5;

/// Deterministic test data in [-1, 1): a small xorshift generator.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn t(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::from_f32(shape, v)
}

fn wide(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// erf by its Maclaurin series (accurate to ~1e-12 for |x| <= 3).
fn erf(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// y[r, o] = sum_i x[r, i] w[o, i] + b[o] for row-major x [rows, inp], w [out, inp].
fn linear(x: &[f64], w: &[f64], b: Option<&[f64]>, inp: usize, out: usize) -> Vec<f64> {
    let rows = x.len() / inp;
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let mut acc = b.map_or(0.0, |b| b[o]);
            for i in 0..inp {
                acc += x[r * inp + i] * w[o * inp + i];
            }
            y[r * out + o] = acc;
        }
    }
    y
}

/// softmax over rows of length n (all -inf rows give zeros).
fn softmax_rows(x: &[f64], n: usize) -> Vec<f64> {
    x.chunks(n)
        .flat_map(|row| {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if m == f64::NEG_INFINITY {
                return vec![0.0; n];
            }
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        })
        .collect()
}

// ---------------------------------------------------------------- std.math

#[test]
fn softmax_family() {
    let m = compile(
        "import std.math
model Test {
  entry f(x: f32[R, N]) {
    return sm = softmax(x), lsm = log_softmax(x), lse = logsumexp(x), lse0 = logsumexp(x, axis = 0, keepdim = true),
           sm0 = softmax(x, axis = 0)
  }
}",
    );
    let inf = f32::INFINITY;
    let x = vec![1.0, 2.0, 3.0, 1000.0, 1001.0, 1002.0, -inf, -inf, -inf, -inf, 0.0, -inf];
    let out = run(&m, "f", vec![], vec![("x", t(&[4, 3], x.clone()))]);
    let p = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219];
    let sm = [p[0], p[1], p[2], p[0], p[1], p[2], 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    assert_close("softmax", &f32s(&out, "sm"), &sm, TOL);
    let ninf = f64::NEG_INFINITY;
    let l: Vec<f64> = p.iter().map(|v| v.ln()).collect();
    let lsm = [l[0], l[1], l[2], l[0], l[1], l[2], ninf, ninf, ninf, ninf, 0.0, ninf];
    assert_close("log_softmax", &f32s(&out, "lsm"), &lsm, TOL);
    let lse3 = 3.0 + (1.0 + (-1f64).exp() + (-2f64).exp()).ln();
    assert_eq!(shape_of(&out, "lse"), &[4]);
    assert_close("logsumexp", &f32s(&out, "lse"), &[lse3, lse3 + 999.0, ninf, 0.0], TOL);
    assert_eq!(shape_of(&out, "lse0"), &[1, 3]);
    // Column sums over rows 1, 1000, -inf, -inf / 2, 1001, -inf, 0 / ...
    let col = |c: usize| {
        let v: Vec<f64> = (0..4).map(|r| f64::from(x[r * 3 + c])).collect();
        let m = v.iter().cloned().fold(ninf, f64::max);
        m + v.iter().map(|a| (a - m).exp()).sum::<f64>().ln()
    };
    assert_close("logsumexp axis 0", &f32s(&out, "lse0"), &[col(0), col(1), col(2)], TOL);
    let xt: Vec<f64> = (0..3)
        .flat_map(|c| (0..4).map(move |r| (r, c)))
        .map(|(r, c)| f64::from(x[r * 3 + c]))
        .collect();
    let smt = softmax_rows(&xt, 4);
    let sm0: Vec<f64> = (0..4)
        .flat_map(|r| (0..3).map(move |c| (r, c)))
        .map(|(r, c)| smt[c * 4 + r])
        .collect();
    assert_close("softmax axis 0", &f32s(&out, "sm0"), &sm0, TOL);
}

#[test]
fn activations() {
    let m = compile(
        "import std.math
model Test {
  entry f(x: f32[N], i: i64[N]) {
    return relu = relu(x), relu2 = relu2(x), gelu = gelu(x), gelu_tanh = gelu_tanh(x), silu = silu(x),
           filled = masked_fill(x, x < 0.0, -7.0), irelu = relu(i)
  }
}",
    );
    let x = vec![-3.0f32, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0];
    let i: Vec<i64> = vec![-3, -1, 0, 0, 1, 1, 2, 3];
    let out = run(
        &m,
        "f",
        vec![],
        vec![("x", t(&[8], x.clone())), ("i", Tensor::from_i64(&[8], i.clone()))],
    );
    let xs = wide(&x);
    let relu: Vec<f64> = xs.iter().map(|v| v.max(0.0)).collect();
    assert_close("relu", &f32s(&out, "relu"), &relu, TOL);
    assert_close(
        "relu2",
        &f32s(&out, "relu2"),
        &relu.iter().map(|v| v * v).collect::<Vec<_>>(),
        TOL,
    );
    // Known points: gelu(1) = Phi(1) = 0.8413447460685429, gelu(-1) = -0.15865525393145707.
    let gelu: Vec<f64> = xs.iter().map(|v| 0.5 * v * (1.0 + erf(v / 2f64.sqrt()))).collect();
    assert!((gelu[5] - 0.8413447460685429).abs() < 1e-12 && (gelu[1] + 0.15865525393145707).abs() < 1e-12);
    assert_close("gelu", &f32s(&out, "gelu"), &gelu, TOL);
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let gelu_tanh: Vec<f64> = xs
        .iter()
        .map(|v| 0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh()))
        .collect();
    assert!((gelu_tanh[5] - 0.8411919906082768).abs() < 1e-12);
    assert_close("gelu_tanh", &f32s(&out, "gelu_tanh"), &gelu_tanh, TOL);
    let silu: Vec<f64> = xs.iter().map(|v| v * sigmoid(*v)).collect();
    assert_close("silu", &f32s(&out, "silu"), &silu, TOL);
    let filled: Vec<f64> = xs.iter().map(|&v| if v < 0.0 { -7.0 } else { v }).collect();
    assert_close("masked_fill", &f32s(&out, "filled"), &filled, TOL);
    let irelu: Vec<i64> = i.iter().map(|v| (*v).max(0)).collect();
    assert_eq!(out["irelu"].to_i64_vec(), irelu);
}

#[test]
fn statistics() {
    let m = compile(
        "import std.math
model Test {
  entry f(x: f32[R, N], a: f32[R, N], b: f32[R, N]) {
    return v = var(x), vall = var(x, axis = [0, 1]), s0 = std(x, axis = 0, keepdim = true),
           cos = cosine_similarity(a, b), cos0 = cosine_similarity(a, b, axis = 0, eps = 0.5)
  }
}",
    );
    let (r, n) = (3, 4);
    let x = data(r * n, 1);
    let a = data(r * n, 2);
    let mut b = data(r * n, 3);
    for v in &mut b[n..2 * n] {
        *v = 0.0; // a zero row: similarity 0, not NaN
    }
    let out = run(
        &m,
        "f",
        vec![],
        vec![
            ("x", t(&[r, n], x.clone())),
            ("a", t(&[r, n], a.clone())),
            ("b", t(&[r, n], b.clone())),
        ],
    );
    let var = |v: &[f64]| {
        let mu = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / v.len() as f64
    };
    let xs = wide(&x);
    let rows: Vec<f64> = xs.chunks(n).map(var).collect();
    assert_close("var", &f32s(&out, "v"), &rows, TOL);
    assert_eq!(shape_of(&out, "vall"), &[] as &[usize]);
    assert_close("var all", &f32s(&out, "vall"), &[var(&xs)], TOL);
    let cols: Vec<f64> = (0..n)
        .map(|c| var(&(0..r).map(|i| xs[i * n + c]).collect::<Vec<_>>()).sqrt())
        .collect();
    assert_eq!(shape_of(&out, "s0"), &[1, n]);
    assert_close("std axis 0", &f32s(&out, "s0"), &cols, TOL);
    let (aw, bw) = (wide(&a), wide(&b));
    let cos = |u: &[f64], v: &[f64], eps: f64| {
        let dot: f64 = u.iter().zip(v).map(|(p, q)| p * q).sum();
        let nu = u.iter().map(|p| p * p).sum::<f64>().sqrt().max(eps);
        let nv = v.iter().map(|p| p * p).sum::<f64>().sqrt().max(eps);
        dot / (nu * nv)
    };
    let want: Vec<f64> = (0..r)
        .map(|i| cos(&aw[i * n..(i + 1) * n], &bw[i * n..(i + 1) * n], 1e-8))
        .collect();
    assert_eq!(want[1], 0.0);
    assert_close("cosine_similarity", &f32s(&out, "cos"), &want, TOL);
    let col = |v: &[f64], c: usize| (0..r).map(|i| v[i * n + c]).collect::<Vec<_>>();
    let want0: Vec<f64> = (0..n).map(|c| cos(&col(&aw, c), &col(&bw, c), 0.5)).collect();
    assert_close("cosine_similarity axis 0", &f32s(&out, "cos0"), &want0, TOL);
}

#[test]
fn randn_is_the_box_muller_stream() {
    let m = compile(
        "import std.math
model Test {
  entry f(seed: i64[], step: i64[]) {
    return z = randn(seed, [200, 250]), z1 = randn(seed, [200, 250], step), s = randn(seed, [])
  }
}",
    );
    let out = run(
        &m,
        "f",
        vec![],
        vec![("seed", Tensor::scalar_i64(11)), ("step", Tensor::scalar_i64(3))],
    );
    let z = f32s(&out, "z");
    assert_eq!(shape_of(&out, "z"), &[200, 250]);
    // Element i uses the uniforms 2i and 2i + 1 of the stream (seed, offset): the same layout as
    // the weight initialiser's normal_f32, which computes in f64.
    let want: Vec<f64> = (0..z.len() as u64).map(|i| f64::from(normal_f32(11, 0, i))).collect();
    assert_close("randn", &z, &want, 1e-5);
    let want1: Vec<f64> = (0..z.len() as u64).map(|i| f64::from(normal_f32(11, 3, i))).collect();
    assert_close("randn offset 3", &f32s(&out, "z1"), &want1, 1e-5);
    assert_close(
        "randn scalar",
        &f32s(&out, "s"),
        &[f64::from(normal_f32(11, 0, 0))],
        1e-5,
    );
    let n = z.len() as f64;
    let mean = z.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let sd = (z.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(mean.abs() < 0.02, "randn mean {mean}");
    assert!((sd - 1.0).abs() < 0.02, "randn std {sd}");
    let neg = z.iter().filter(|&&v| v < 0.0).count() as f64 / n;
    assert!((neg - 0.5).abs() < 0.01, "randn: fraction of negative samples {neg}");
    assert!(z.iter().all(|v| v.is_finite()));
}

#[test]
fn sample_categorical_follows_the_distribution() {
    let m = compile(
        "import std.math
model Test {
  entry f(logits: f32[N, V], seed: i64[]) { return idx = sample_categorical(logits, seed, 2) }
}",
    );
    let rows = 20000;
    let probs = [0.1f64, 0.2, 0.7];
    let mut logits: Vec<f32> = (0..rows).flat_map(|_| probs.iter().map(|p| p.ln() as f32)).collect();
    // The last row can only draw index 1.
    logits.truncate((rows - 1) * 3);
    logits.extend([f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
    let out = run(
        &m,
        "f",
        vec![],
        vec![
            ("logits", t(&[rows, 3], logits.clone())),
            ("seed", Tensor::scalar_i64(9)),
        ],
    );
    let idx = out["idx"].to_i64_vec();
    assert_eq!(idx.len(), rows);
    assert_eq!(idx[rows - 1], 1);
    for (k, p) in probs.iter().enumerate() {
        let freq = idx[..rows - 1].iter().filter(|&&i| i == k as i64).count() as f64 / (rows - 1) as f64;
        assert!(
            (freq - p).abs() < 0.015,
            "category {k}: frequency {freq}, probability {p}"
        );
    }
    // The same draw computed directly: argmax(logits - log(-log(u))) with u from (seed, offset 2).
    let mut mismatches = 0;
    for r in 0..rows {
        let score = |c: usize| {
            let u = f64::from(uniform_f32(9, 2, (r * 3 + c) as u64)).max(2f64.powi(-24));
            f64::from(logits[r * 3 + c]) - (-u.ln()).ln()
        };
        let best = (0..3).fold(0, |b, c| if score(c) > score(b) { c } else { b });
        mismatches += usize::from(best as i64 != idx[r]);
    }
    assert!(
        mismatches <= rows / 1000,
        "{mismatches} rows differ from the direct Gumbel-max draw"
    );
}

/// Nucleus sampling draws only from the smallest set of most likely tokens reaching `p`, in
/// proportion to their renormalised probabilities; a tiny `p` is greedy; a temperature sharpens.
#[test]
fn sample_top_p_draws_from_the_nucleus() {
    let m = compile(
        "import std.math
model Test {
  entry f(logits: f32[N, V], seed: i64[]) {
    return idx = sample_top_p(logits, 0.65, seed, 3), greedy = sample_top_p(logits, 1e-6, seed, 4),
           cold = sample_top_p(logits, 1.0, seed, 5, temperature = 0.05)
  }
}",
    );
    let rows = 20000;
    // Probabilities 0.45, 0.25, 0.15, 0.1, 0.05 in a shuffled order: with p = 0.65 the nucleus is
    // ids 3 and 0 (the mass before id 0 is 0.45 < 0.65; before the third, 0.70 is not).
    let probs = [0.25f64, 0.1, 0.05, 0.45, 0.15];
    let logits: Vec<f32> = (0..rows).flat_map(|_| probs.iter().map(|p| p.ln() as f32)).collect();
    let out = run(
        &m,
        "f",
        vec![],
        vec![("logits", t(&[rows, 5], logits)), ("seed", Tensor::scalar_i64(7))],
    );
    let idx = out["idx"].to_i64_vec();
    let count = |k: i64| idx.iter().filter(|&&i| i == k).count() as f64 / rows as f64;
    assert_eq!(
        count(1) + count(2) + count(4),
        0.0,
        "only the nucleus {{3, 0}} is drawn"
    );
    let want = 0.45 / 0.70;
    assert!(
        (count(3) - want).abs() < 0.015,
        "token 3: frequency {}, want {want}",
        count(3)
    );
    assert!(out["greedy"].to_i64_vec().iter().all(|&i| i == 3), "a tiny p is greedy");
    assert!(
        out["cold"].to_i64_vec().iter().all(|&i| i == 3),
        "temperature 0.05 is all but greedy"
    );
}

// ---------------------------------------------------------------- std.nn

fn param_shapes(m: &Module) -> Vec<(String, Vec<u64>)> {
    m.params.iter().map(|p| (p.name.clone(), p.shape.clone())).collect()
}

fn names_and_shapes(list: &[(&str, &[u64])]) -> Vec<(String, Vec<u64>)> {
    let mut v: Vec<(String, Vec<u64>)> = list.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect();
    v.sort();
    v
}

#[test]
fn linear_and_embedding() {
    let m = compile(
        "import std.nn
model Test(inp: int = 3, out: int = 2) {
  a = Linear(inp, out)
  b = Linear(inp, out, has_bias = false)
  e = Embedding(5, inp)
  entry f(x: f32[B, T, inp], ids: i64[B, T]) { return ya = a(x), yb = b(x), emb = e(ids) }
}",
    );
    let mut got = param_shapes(&m);
    got.sort();
    assert_eq!(
        got,
        names_and_shapes(&[
            ("a.bias", &[2]),
            ("a.weight", &[2, 3]),
            ("b.weight", &[2, 3]),
            ("e.weight", &[5, 3])
        ])
    );
    let (w, bias, wb, table) = (data(6, 1), data(2, 2), data(6, 3), data(15, 4));
    let x = data(2 * 2 * 3, 5);
    let ids = vec![4i64, 0, 2, 2];
    let out = run(
        &m,
        "f",
        vec![
            ("a.weight", t(&[2, 3], w.clone())),
            ("a.bias", t(&[2], bias.clone())),
            ("b.weight", t(&[2, 3], wb.clone())),
            ("e.weight", t(&[5, 3], table.clone())),
        ],
        vec![
            ("x", t(&[2, 2, 3], x.clone())),
            ("ids", Tensor::from_i64(&[2, 2], ids.clone())),
        ],
    );
    assert_eq!(shape_of(&out, "ya"), &[2, 2, 2]);
    assert_close(
        "Linear",
        &f32s(&out, "ya"),
        &linear(&wide(&x), &wide(&w), Some(&wide(&bias)), 3, 2),
        TOL,
    );
    assert_close(
        "Linear without bias",
        &f32s(&out, "yb"),
        &linear(&wide(&x), &wide(&wb), None, 3, 2),
        TOL,
    );
    let emb: Vec<f64> = ids
        .iter()
        .flat_map(|&i| wide(&table[i as usize * 3..i as usize * 3 + 3]))
        .collect();
    assert_eq!(shape_of(&out, "emb"), &[2, 2, 3]);
    assert_close("Embedding", &f32s(&out, "emb"), &emb, 0.0);
}

fn layer_norm_ref(x: &[f64], w: Option<&[f64]>, b: Option<&[f64]>, d: usize, eps: f64) -> Vec<f64> {
    x.chunks(d)
        .flat_map(|row| {
            let mu = row.iter().sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / d as f64;
            (0..d)
                .map(|i| (row[i] - mu) / (var + eps).sqrt() * w.map_or(1.0, |w| w[i]) + b.map_or(0.0, |b| b[i]))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn rms_norm_ref(x: &[f64], w: &[f64], d: usize, eps: f64) -> Vec<f64> {
    x.chunks(d)
        .flat_map(|row| {
            let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
            (0..d).map(|i| row[i] / (ms + eps).sqrt() * w[i]).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn normalisation() {
    let m = compile(
        "import std.nn
model Test(d: int = 5) {
  ln = LayerNorm(d)
  ln2 = LayerNorm(d, eps = 0.1)
  rn = RMSNorm(d)
  entry f(x: f32[B, d], w: f32[d], b: f32[d]) {
    return ln = ln(x), ln2 = ln2(x), plain = layer_norm(x, None, None), fn_ln = layer_norm(x, w, b, eps = 1e-3),
           rn = rn(x), fn_rn = rms_norm(x, w, eps = 0.5)
  }
}",
    );
    let mut got = param_shapes(&m);
    got.sort();
    assert_eq!(
        got,
        names_and_shapes(&[
            ("ln.bias", &[5]),
            ("ln.weight", &[5]),
            ("ln2.bias", &[5]),
            ("ln2.weight", &[5]),
            ("rn.weight", &[5])
        ])
    );
    let d = 5;
    let x: Vec<f32> = data(3 * d, 1).iter().map(|v| v * 4.0 + 2.0).collect();
    let (lw, lb, rw, w, b) = (data(d, 2), data(d, 3), data(d, 4), data(d, 5), data(d, 6));
    let out = run(
        &m,
        "f",
        vec![
            ("ln.weight", t(&[d], lw.clone())),
            ("ln.bias", t(&[d], lb.clone())),
            ("ln2.weight", t(&[d], vec![1.0; d])),
            ("ln2.bias", t(&[d], vec![0.0; d])),
            ("rn.weight", t(&[d], rw.clone())),
        ],
        vec![
            ("x", t(&[3, d], x.clone())),
            ("w", t(&[d], w.clone())),
            ("b", t(&[d], b.clone())),
        ],
    );
    let xs = wide(&x);
    assert_close(
        "LayerNorm",
        &f32s(&out, "ln"),
        &layer_norm_ref(&xs, Some(&wide(&lw)), Some(&wide(&lb)), d, 1e-5),
        TOL,
    );
    assert_close(
        "LayerNorm eps",
        &f32s(&out, "ln2"),
        &layer_norm_ref(&xs, None, None, d, 0.1),
        TOL,
    );
    assert_close(
        "layer_norm without affine",
        &f32s(&out, "plain"),
        &layer_norm_ref(&xs, None, None, d, 1e-5),
        TOL,
    );
    assert_close(
        "layer_norm",
        &f32s(&out, "fn_ln"),
        &layer_norm_ref(&xs, Some(&wide(&w)), Some(&wide(&b)), d, 1e-3),
        TOL,
    );
    assert_close(
        "RMSNorm",
        &f32s(&out, "rn"),
        &rms_norm_ref(&xs, &wide(&rw), d, 1e-6),
        TOL,
    );
    assert_close(
        "rms_norm",
        &f32s(&out, "fn_rn"),
        &rms_norm_ref(&xs, &wide(&w), d, 0.5),
        TOL,
    );
}

#[test]
fn feed_forward_blocks() {
    let m = compile(
        "import std.nn
model Test(d: int = 3, h: int = 4) {
  mlp = GeluMLP(d, h)
  mlp_tanh = GeluMLP(d, h, tanh_approx = true)
  swiglu = SwiGLU(d, h)
  entry f(x: f32[B, d]) { return mlp = mlp(x), mlp_tanh = mlp_tanh(x), swiglu = swiglu(x) }
}",
    );
    let (d, h) = (3, 4);
    let mut weights: Vec<(String, Tensor)> = Vec::new();
    let mut refs: HashMap<String, Vec<f64>> = HashMap::new();
    for (k, p) in m.params.iter().enumerate() {
        let shape: Vec<usize> = p.shape.iter().map(|&s| s as usize).collect();
        let v = data(shape.iter().product(), 100 + k as u64);
        refs.insert(p.name.clone(), wide(&v));
        weights.push((p.name.clone(), t(&shape, v)));
    }
    let mut names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mlp.fc1.bias",
            "mlp.fc1.weight",
            "mlp.fc2.bias",
            "mlp.fc2.weight",
            "mlp_tanh.fc1.bias",
            "mlp_tanh.fc1.weight",
            "mlp_tanh.fc2.bias",
            "mlp_tanh.fc2.weight",
            "swiglu.down_proj.weight",
            "swiglu.gate_proj.weight",
            "swiglu.up_proj.weight"
        ]
    );
    assert_eq!(
        m.param("swiglu.down_proj.weight").map(|p| p.shape.clone()),
        Some(vec![3, 4])
    );
    let x = data(2 * d, 7);
    let xs = wide(&x);
    let out = run(
        &m,
        "f",
        weights.iter().map(|(n, t)| (n.as_str(), t.clone())).collect(),
        vec![("x", t(&[2, d], x))],
    );
    let r = |n: &str| refs[n].clone();
    let gelu = |v: f64| 0.5 * v * (1.0 + erf(v / 2f64.sqrt()));
    let k = (2.0 / std::f64::consts::PI).sqrt();
    let gelu_tanh = |v: f64| 0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh());
    let mlp = |p: &str, act: &dyn Fn(f64) -> f64| {
        let hid: Vec<f64> = linear(
            &xs,
            &r(&format!("{p}.fc1.weight")),
            Some(&r(&format!("{p}.fc1.bias"))),
            d,
            h,
        )
        .into_iter()
        .map(act)
        .collect();
        linear(
            &hid,
            &r(&format!("{p}.fc2.weight")),
            Some(&r(&format!("{p}.fc2.bias"))),
            h,
            d,
        )
    };
    assert_close("GeluMLP", &f32s(&out, "mlp"), &mlp("mlp", &gelu), TOL);
    assert_close(
        "GeluMLP tanh",
        &f32s(&out, "mlp_tanh"),
        &mlp("mlp_tanh", &gelu_tanh),
        TOL,
    );
    let gate = linear(&xs, &r("swiglu.gate_proj.weight"), None, d, h);
    let up = linear(&xs, &r("swiglu.up_proj.weight"), None, d, h);
    let hid: Vec<f64> = gate.iter().zip(&up).map(|(g, u)| g * sigmoid(*g) * u).collect();
    assert_close(
        "SwiGLU",
        &f32s(&out, "swiglu"),
        &linear(&hid, &r("swiglu.down_proj.weight"), None, h, d),
        TOL,
    );
}

#[test]
fn lstm_cell_matches_the_pytorch_formula() {
    let m = compile(
        "import std.nn
model Test(inp: int = 3, hidden: int = 2) {
  cell = LSTMCell(inp, hidden)
  entry step(x: f32[B, inp], h: f32[B, hidden], c: f32[B, hidden]) {
    let (h2, c2) = cell(x, h, c)
    return h2, c2
  }
}",
    );
    let (inp, hd, batch) = (3, 2, 2);
    let mut got = param_shapes(&m);
    got.sort();
    assert_eq!(
        got,
        names_and_shapes(&[
            ("cell.bias_hh", &[8]),
            ("cell.bias_ih", &[8]),
            ("cell.weight_hh", &[8, 2]),
            ("cell.weight_ih", &[8, 3])
        ])
    );
    let (wih, whh, bih, bhh) = (data(8 * inp, 1), data(8 * hd, 2), data(8, 3), data(8, 4));
    let (x, h, c) = (data(batch * inp, 5), data(batch * hd, 6), data(batch * hd, 7));
    let out = run(
        &m,
        "step",
        vec![
            ("cell.weight_ih", t(&[8, inp], wih.clone())),
            ("cell.weight_hh", t(&[8, hd], whh.clone())),
            ("cell.bias_ih", t(&[8], bih.clone())),
            ("cell.bias_hh", t(&[8], bhh.clone())),
        ],
        vec![
            ("x", t(&[batch, inp], x.clone())),
            ("h", t(&[batch, hd], h.clone())),
            ("c", t(&[batch, hd], c.clone())),
        ],
    );
    let (mut h2, mut c2) = (Vec::new(), Vec::new());
    for b in 0..batch {
        // gate row r of the 4*hidden axis: i = rows 0..hd, f = hd..2hd, g = 2hd..3hd, o = 3hd..4hd
        let gate = |r: usize| {
            let mut a = f64::from(bih[r]) + f64::from(bhh[r]);
            for k in 0..inp {
                a += f64::from(wih[r * inp + k]) * f64::from(x[b * inp + k]);
            }
            for k in 0..hd {
                a += f64::from(whh[r * hd + k]) * f64::from(h[b * hd + k]);
            }
            a
        };
        for j in 0..hd {
            let (i, f, g, o) = (
                sigmoid(gate(j)),
                sigmoid(gate(hd + j)),
                gate(2 * hd + j).tanh(),
                sigmoid(gate(3 * hd + j)),
            );
            let cn = f * f64::from(c[b * hd + j]) + i * g;
            c2.push(cn);
            h2.push(o * cn.tanh());
        }
    }
    assert_close("LSTMCell h", &f32s(&out, "h2"), &h2, TOL);
    assert_close("LSTMCell c", &f32s(&out, "c2"), &c2, TOL);
}

fn timestep_ref(ts: &[f64], dim: usize, max_period: f64) -> Vec<f64> {
    let half = dim / 2;
    let mut out = Vec::new();
    for &t in ts {
        let args: Vec<f64> = (0..half)
            .map(|j| t * (-max_period.ln() * j as f64 / half as f64).exp())
            .collect();
        out.extend(args.iter().map(|a| a.cos()));
        out.extend(args.iter().map(|a| a.sin()));
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    out
}

#[test]
fn timestep_embedding_values() {
    let m = compile(
        "import std.nn
model Test {
  te = TimestepEmbedder(4, freq_dim = 6)
  entry f(t: f32[B], ti: i64[B]) {
    return e8 = timestep_embedding(t, 8), e7 = timestep_embedding(t, 7, max_period = 100.0),
           ei = timestep_embedding(ti, 4), te = te(t)
  }
}",
    );
    let mut got = param_shapes(&m);
    got.sort();
    assert_eq!(
        got,
        names_and_shapes(&[
            ("te.linear1.bias", &[4]),
            ("te.linear1.weight", &[4, 6]),
            ("te.linear2.bias", &[4]),
            ("te.linear2.weight", &[4, 4])
        ])
    );
    let ts = vec![0.0f32, 1.0, 3.5, 999.0];
    let ti = vec![0i64, 1, 10, 999];
    let weights: Vec<(String, Vec<usize>, Vec<f32>)> = m
        .params
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let shape: Vec<usize> = p.shape.iter().map(|&s| s as usize).collect();
            let n = shape.iter().product();
            (p.name.clone(), shape, data(n, 40 + k as u64))
        })
        .collect();
    let out = run(
        &m,
        "f",
        weights.iter().map(|(n, s, v)| (n.as_str(), t(s, v.clone()))).collect(),
        vec![("t", t(&[4], ts.clone())), ("ti", Tensor::from_i64(&[4], ti.clone()))],
    );
    let tw = wide(&ts);
    // t = 1: [cos(1), cos(0.01), cos(1e-4), cos(1e-6), sin(1), sin(0.01), ...] for dim 8.
    assert_close(
        "timestep_embedding",
        &f32s(&out, "e8"),
        &timestep_ref(&tw, 8, 10000.0),
        TOL,
    );
    assert_eq!(shape_of(&out, "e7"), &[4, 7]);
    assert_close(
        "timestep_embedding odd",
        &f32s(&out, "e7"),
        &timestep_ref(&tw, 7, 100.0),
        TOL,
    );
    let tiw: Vec<f64> = ti.iter().map(|&v| v as f64).collect();
    assert_close(
        "timestep_embedding of i64",
        &f32s(&out, "ei"),
        &timestep_ref(&tiw, 4, 10000.0),
        TOL,
    );
    let w = |n: &str| wide(&weights.iter().find(|(m, _, _)| m == n).expect("weight").2);
    let h: Vec<f64> = linear(
        &timestep_ref(&tw, 6, 10000.0),
        &w("te.linear1.weight"),
        Some(&w("te.linear1.bias")),
        6,
        4,
    )
    .into_iter()
    .map(|v| v * sigmoid(v))
    .collect();
    let want = linear(&h, &w("te.linear2.weight"), Some(&w("te.linear2.bias")), 4, 4);
    assert_close("TimestepEmbedder", &f32s(&out, "te"), &want, TOL);
}

// ---------------------------------------------------------------- std.attention

/// Shapes of an attention problem, row-major [B, H, T, dh] tensors.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    hkv: usize,
    tq: usize,
    tk: usize,
    dh: usize,
}

/// What may be attended, and additive biases, for the naive reference.
struct Masks<'a> {
    causal: bool,
    /// bool [B, 1, Tq, Tk]
    bool_mask: Option<&'a [bool]>,
    /// f32 [Tq, Tk]
    float_mask: Option<&'a [f32]>,
    /// bool [B, Tk]
    key_padding: Option<&'a [bool]>,
    scale: Option<f64>,
}

const NO_MASKS: Masks<'static> = Masks {
    causal: false,
    bool_mask: None,
    float_mask: None,
    key_padding: None,
    scale: None,
};

/// Naive attention: a loop over batch, head and query; query head i reads kv head i / (H / Hkv).
fn attention_ref(q: &[f32], k: &[f32], v: &[f32], d: Dims, m: &Masks) -> Vec<f64> {
    let group = d.h / d.hkv;
    let scale = m.scale.unwrap_or(1.0 / (d.dh as f64).sqrt());
    let mut out = vec![0.0; d.b * d.h * d.tq * d.dh];
    for b in 0..d.b {
        for h in 0..d.h {
            let kh = h / group;
            for i in 0..d.tq {
                let qv = &q[((b * d.h + h) * d.tq + i) * d.dh..][..d.dh];
                let mut scores = vec![f64::NEG_INFINITY; d.tk];
                for (j, s) in scores.iter_mut().enumerate() {
                    let allowed = (!m.causal || j as i64 <= i as i64 + d.tk as i64 - d.tq as i64)
                        && m.bool_mask.is_none_or(|bm| bm[(b * d.tq + i) * d.tk + j])
                        && m.key_padding.is_none_or(|kp| kp[b * d.tk + j]);
                    if !allowed {
                        continue;
                    }
                    let kv = &k[((b * d.hkv + kh) * d.tk + j) * d.dh..][..d.dh];
                    let dot: f64 = qv.iter().zip(kv).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
                    *s = dot * scale + m.float_mask.map_or(0.0, |fm| f64::from(fm[i * d.tk + j]));
                }
                let p = softmax_rows(&scores, d.tk);
                for (j, pj) in p.iter().enumerate() {
                    let vv = &v[((b * d.hkv + kh) * d.tk + j) * d.dh..][..d.dh];
                    for c in 0..d.dh {
                        out[((b * d.h + h) * d.tq + i) * d.dh + c] += pj * f64::from(vv[c]);
                    }
                }
            }
        }
    }
    out
}

const ATTENTION_MODEL: &str = "import std.attention
model Test(h: int = 4, g: int = 2, dh: int = 4) {
  entry plain(q: f32[B, h, S, dh], k: f32[B, g, T, dh], v: f32[B, g, T, dh]) { return o = attention(q, k, v) }
  entry causal(q: f32[B, h, S, dh], k: f32[B, g, T, dh], v: f32[B, g, T, dh]) { return o = attention(q, k, v, causal = true) }
  entry bool_mask(q: f32[B, h, S, dh], k: f32[B, g, T, dh], v: f32[B, g, T, dh], m: bool[B, 1, S, T]) {
    return o = attention(q, k, v, mask = m)
  }
  entry float_mask(q: f32[B, h, S, dh], k: f32[B, g, T, dh], v: f32[B, g, T, dh], m: f32[S, T]) {
    return o = attention(q, k, v, mask = m, scale = 0.3)
  }
  entry padded(q: f32[B, h, S, dh], k: f32[B, g, T, dh], v: f32[B, g, T, dh], kp: bool[B, T]) {
    return o = attention(q, k, v, causal = true, key_padding = kp)
  }
  entry repeated(q: f32[B, h, S, dh], k: f32[B, g, T, dh], v: f32[B, g, T, dh]) {
    return o = attention(q, repeat_kv(k, h / g), repeat_kv(v, h / g), causal = true)
  }
  entry heads(x: f32[B, T, 12]) {
    let s = split_heads(x, 3)
    return s, back = merge_heads(s)
  }
}";

fn attention_inputs(d: Dims, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let q: Vec<f32> = data(d.b * d.h * d.tq * d.dh, seed).iter().map(|x| x * 2.0).collect();
    let k: Vec<f32> = data(d.b * d.hkv * d.tk * d.dh, seed + 1)
        .iter()
        .map(|x| x * 2.0)
        .collect();
    let v = data(d.b * d.hkv * d.tk * d.dh, seed + 2);
    (q, k, v)
}

fn qkv(d: Dims, q: &[f32], k: &[f32], v: &[f32]) -> Vec<(&'static str, Tensor)> {
    vec![
        ("q", t(&[d.b, d.h, d.tq, d.dh], q.to_vec())),
        ("k", t(&[d.b, d.hkv, d.tk, d.dh], k.to_vec())),
        ("v", t(&[d.b, d.hkv, d.tk, d.dh], v.to_vec())),
    ]
}

#[test]
fn attention_masks_match_a_naive_loop() {
    let m = compile(ATTENTION_MODEL);
    for (tq, tk) in [(3, 5), (5, 5), (4, 3)] {
        let d = Dims {
            b: 2,
            h: 4,
            hkv: 2,
            tq,
            tk,
            dh: 4,
        };
        let (q, k, v) = attention_inputs(d, 10 + tq as u64);
        let what = |s: &str| format!("{s} (Tq {tq}, Tk {tk})");

        let out = run(&m, "plain", vec![], qkv(d, &q, &k, &v));
        assert_close(
            &what("attention"),
            &f32s(&out, "o"),
            &attention_ref(&q, &k, &v, d, &NO_MASKS),
            TOL,
        );

        let causal = Masks {
            causal: true,
            ..NO_MASKS
        };
        let out = run(&m, "causal", vec![], qkv(d, &q, &k, &v));
        let want = attention_ref(&q, &k, &v, d, &causal);
        assert_close(&what("causal attention"), &f32s(&out, "o"), &want, TOL);
        if tq > tk {
            // The first query has no key at or before its aligned position: a zero row, not NaN.
            assert!(want[..d.dh].iter().all(|&x| x == 0.0));
        }

        let bm: Vec<bool> = data(d.b * tq * tk, 77).iter().map(|&x| x > -0.3).collect();
        let mut inputs = qkv(d, &q, &k, &v);
        inputs.push(("m", Tensor::from_bool(&[d.b, 1, tq, tk], bm.clone())));
        let out = run(&m, "bool_mask", vec![], inputs);
        let masks = Masks {
            bool_mask: Some(&bm),
            ..NO_MASKS
        };
        assert_close(
            &what("bool mask"),
            &f32s(&out, "o"),
            &attention_ref(&q, &k, &v, d, &masks),
            TOL,
        );

        let mut fm = data(tq * tk, 78);
        fm[1] = f32::NEG_INFINITY;
        let mut inputs = qkv(d, &q, &k, &v);
        inputs.push(("m", t(&[tq, tk], fm.clone())));
        let out = run(&m, "float_mask", vec![], inputs);
        let masks = Masks {
            float_mask: Some(&fm),
            scale: Some(f64::from(0.3f32)),
            ..NO_MASKS
        };
        assert_close(
            &what("float mask"),
            &f32s(&out, "o"),
            &attention_ref(&q, &k, &v, d, &masks),
            TOL,
        );

        // Batch 0 has its last key padded; batch 1 has no real key at all (all rows zero).
        let kp: Vec<bool> = (0..d.b * tk).map(|i| i < tk - 1).collect();
        let mut inputs = qkv(d, &q, &k, &v);
        inputs.push(("kp", Tensor::from_bool(&[d.b, tk], kp.clone())));
        let out = run(&m, "padded", vec![], inputs);
        let masks = Masks {
            causal: true,
            key_padding: Some(&kp),
            ..NO_MASKS
        };
        let got = f32s(&out, "o");
        assert_close(&what("key padding"), &got, &attention_ref(&q, &k, &v, d, &masks), TOL);
        assert!(
            got[got.len() / 2..].iter().all(|&x| x == 0.0),
            "fully masked rows must give zeros"
        );
    }
}

#[test]
fn grouped_query_attention_equals_repeated_heads() {
    let m = compile(ATTENTION_MODEL);
    let d = Dims {
        b: 2,
        h: 4,
        hkv: 2,
        tq: 3,
        tk: 4,
        dh: 4,
    };
    let (q, k, v) = attention_inputs(d, 5);
    let gqa = f32s(&run(&m, "causal", vec![], qkv(d, &q, &k, &v)), "o");
    let rep = f32s(&run(&m, "repeated", vec![], qkv(d, &q, &k, &v)), "o");
    assert_eq!(gqa, rep);
    // The same with the heads repeated here: head i of the result is kv head i / 2.
    let repeat = |x: &[f32]| -> Vec<f32> {
        let mut out = Vec::new();
        for b in 0..d.b {
            for hh in 0..d.h {
                let src = (b * d.hkv + hh / 2) * d.tk * d.dh;
                out.extend_from_slice(&x[src..src + d.tk * d.dh]);
            }
        }
        out
    };
    let full = Dims { hkv: d.h, ..d };
    let mha = compile(&ATTENTION_MODEL.replace("g: int = 2", "g: int = 4"));
    let got = f32s(
        &run(&mha, "causal", vec![], qkv(full, &q, &repeat(&k), &repeat(&v))),
        "o",
    );
    assert_close("GQA vs repeated heads", &gqa, &wide(&got), 1e-6);
}

#[test]
fn split_and_merge_heads() {
    let m = compile(ATTENTION_MODEL);
    let x = data(2 * 5 * 12, 3);
    let out = run(&m, "heads", vec![], vec![("x", t(&[2, 5, 12], x.clone()))]);
    assert_eq!(shape_of(&out, "s"), &[2, 3, 5, 4]);
    let s = f32s(&out, "s");
    for b in 0..2 {
        for h in 0..3 {
            for tt in 0..5 {
                for c in 0..4 {
                    assert_eq!(s[((b * 3 + h) * 5 + tt) * 4 + c], x[(b * 5 + tt) * 12 + h * 4 + c]);
                }
            }
        }
    }
    assert_eq!(f32s(&out, "back"), x);
}

/// x: [b, h, tl, dh]; pos: [tl], or [b, tl] when `per_batch`.
fn rope_ref(x: &[f32], pos: &[i64], [b, h, tl, dh]: [usize; 4], base: f64, per_batch: bool) -> Vec<f64> {
    let half = dh / 2;
    let mut out = vec![0.0; x.len()];
    for bi in 0..b {
        for hi in 0..h {
            for ti in 0..tl {
                let p = pos[if per_batch { bi * tl + ti } else { ti }] as f64;
                let row = ((bi * h + hi) * tl + ti) * dh;
                for i in 0..half {
                    let theta = p * base.powf(-2.0 * i as f64 / dh as f64);
                    let (x1, x2) = (f64::from(x[row + i]), f64::from(x[row + i + half]));
                    out[row + i] = x1 * theta.cos() - x2 * theta.sin();
                    out[row + i + half] = x2 * theta.cos() + x1 * theta.sin();
                }
            }
        }
    }
    out
}

#[test]
fn rope_rotates_pairs_and_keeps_norms() {
    let m = compile(
        "import std.attention
model Test(D: int = 8) {
  entry shared(x: f32[B, H, T, D], pos: i64[T]) { return y = rope(x, pos) }
  entry per_batch(x: f32[B, H, T, D], pos: i64[B, T]) { return y = rope(x, pos, base = 500.0) }
}",
    );
    let (b, h, tl, dh) = (2, 3, 4, 8);
    let x = data(b * h * tl * dh, 9);
    let pos = vec![0i64, 1, 7, 100];
    let out = run(
        &m,
        "shared",
        vec![],
        vec![
            ("x", t(&[b, h, tl, dh], x.clone())),
            ("pos", Tensor::from_i64(&[tl], pos.clone())),
        ],
    );
    let y = f32s(&out, "y");
    // Position 0 is the identity; positions are relative: the tolerance allows for f32 angles.
    assert_close("rope", &y, &rope_ref(&x, &pos, [b, h, tl, dh], 10000.0, false), 2e-5);
    assert_eq!(&y[..dh], &x[..dh]);
    for (row_in, row_out) in x.chunks(dh).zip(y.chunks(dh)) {
        let n = |r: &[f32]| r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        assert!(
            (n(row_in) - n(row_out)).abs() < 1e-5,
            "rope changed a norm: {} -> {}",
            n(row_in),
            n(row_out)
        );
    }
    let posb = vec![3i64, 2, 1, 0, 5, 6, 7, 8];
    let out = run(
        &m,
        "per_batch",
        vec![],
        vec![
            ("x", t(&[b, h, tl, dh], x.clone())),
            ("pos", Tensor::from_i64(&[b, tl], posb.clone())),
        ],
    );
    assert_close(
        "rope per batch",
        &f32s(&out, "y"),
        &rope_ref(&x, &posb, [b, h, tl, dh], 500.0, true),
        2e-5,
    );
}

#[test]
fn multi_head_attention_block() {
    let m = compile(
        "import std.attention
model Test(d: int = 8) {
  attn = MultiHeadAttention(d, 4, kv_heads = 2, has_bias = true)
  entry self_attn(x: f32[B, T, d]) { return o = attn(x, causal = true) }
  entry cross(x: f32[B, S, d], y: f32[B, T, d], kp: bool[B, T]) {
    let (k, v) = attn.project_kv(y)
    return o = attn.attend(x, k, v, key_padding = kp), k = k
  }
}",
    );
    let (d, heads, kvh, dh, b) = (8, 4, 2, 2, 2);
    let mut got = param_shapes(&m);
    got.sort();
    assert_eq!(
        got,
        names_and_shapes(&[
            ("attn.k_proj.bias", &[4]),
            ("attn.k_proj.weight", &[4, 8]),
            ("attn.o_proj.bias", &[8]),
            ("attn.o_proj.weight", &[8, 8]),
            ("attn.q_proj.bias", &[8]),
            ("attn.q_proj.weight", &[8, 8]),
            ("attn.v_proj.bias", &[4]),
            ("attn.v_proj.weight", &[4, 8]),
        ])
    );
    let mut w: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    for (k, p) in m.params.iter().enumerate() {
        let shape: Vec<usize> = p.shape.iter().map(|&s| s as usize).collect();
        let n = shape.iter().product();
        w.insert(p.name.clone(), (shape, data(n, 60 + k as u64)));
    }
    let weights = || {
        w.iter()
            .map(|(n, (s, v))| (n.as_str(), t(s, v.clone())))
            .collect::<Vec<_>>()
    };
    let lin = |name: &str, x: &[f64], inp: usize, out: usize| {
        let wt = wide(&w[&format!("attn.{name}.weight")].1);
        let bs = wide(&w[&format!("attn.{name}.bias")].1);
        linear(x, &wt, Some(&bs), inp, out)
    };
    // [B, T, H*dh] -> [B, H, T, dh] as f32 for the naive attention.
    let split = |x: &[f64], tl: usize, hh: usize| -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for bi in 0..b {
            for ti in 0..tl {
                for hi in 0..hh {
                    for c in 0..dh {
                        out[((bi * hh + hi) * tl + ti) * dh + c] = x[(bi * tl + ti) * hh * dh + hi * dh + c] as f32;
                    }
                }
            }
        }
        out
    };
    let merge = |o: &[f64], tl: usize| -> Vec<f64> {
        let mut out = vec![0.0; o.len()];
        for bi in 0..b {
            for hi in 0..heads {
                for ti in 0..tl {
                    for c in 0..dh {
                        out[(bi * tl + ti) * d + hi * dh + c] = o[((bi * heads + hi) * tl + ti) * dh + c];
                    }
                }
            }
        }
        out
    };
    let mha = |x: &[f32], y: &[f32], s: usize, tl: usize, masks: &Masks| -> (Vec<f64>, Vec<f32>) {
        let q = split(&lin("q_proj", &wide(x), d, d), s, heads);
        let k = split(&lin("k_proj", &wide(y), d, kvh * dh), tl, kvh);
        let v = split(&lin("v_proj", &wide(y), d, kvh * dh), tl, kvh);
        let o = attention_ref(
            &q,
            &k,
            &v,
            Dims {
                b,
                h: heads,
                hkv: kvh,
                tq: s,
                tk: tl,
                dh,
            },
            masks,
        );
        (lin("o_proj", &merge(&o, s), d, d), k)
    };

    let x = data(b * 3 * d, 1);
    let out = run(&m, "self_attn", weights(), vec![("x", t(&[b, 3, d], x.clone()))]);
    let (want, _) = mha(
        &x,
        &x,
        3,
        3,
        &Masks {
            causal: true,
            ..NO_MASKS
        },
    );
    assert_close("MultiHeadAttention", &f32s(&out, "o"), &want, TOL);

    let y = data(b * 5 * d, 2);
    let kp: Vec<bool> = (0..b * 5).map(|i| i % 4 != 3).collect();
    let out = run(
        &m,
        "cross",
        weights(),
        vec![
            ("x", t(&[b, 3, d], x.clone())),
            ("y", t(&[b, 5, d], y.clone())),
            ("kp", Tensor::from_bool(&[b, 5], kp.clone())),
        ],
    );
    let (want, k) = mha(
        &x,
        &y,
        3,
        5,
        &Masks {
            key_padding: Some(&kp),
            ..NO_MASKS
        },
    );
    assert_eq!(shape_of(&out, "k"), &[b, kvh, 5, dh]);
    assert_close("project_kv", &f32s(&out, "k"), &wide(&k), TOL);
    assert_close("attend", &f32s(&out, "o"), &want, TOL);
}

// ---------------------------------------------------------------- the reference never rots

fn dsl_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dsl"))
        .collect();
    files.sort();
    files
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_std_module_compiles() {
    let files = dsl_files(&repo().join("dsl/std"));
    assert_eq!(files.len(), 4);
    for f in files {
        if let Err(e) = compile_file(&f, &LowerOptions::default()) {
            panic!("{} does not compile:\n{e}", f.display());
        }
    }
}

/// LANGUAGE.md shows every example file verbatim, in a code block under its path.
#[test]
fn the_reference_shows_every_example() {
    let doc = std::fs::read_to_string(repo().join("dsl/LANGUAGE.md")).expect("dsl/LANGUAGE.md");
    for f in dsl_files(&repo().join("dsl/examples")) {
        let name = f.file_name().expect("file name").to_string_lossy().to_string();
        let text = std::fs::read_to_string(&f).expect("example text");
        let block = format!("*`dsl/examples/{name}`*\n\n```mlc\n{text}```");
        assert!(
            doc.contains(&block),
            "dsl/LANGUAGE.md does not show the current text of dsl/examples/{name}"
        );
    }
}

/// Every example of LANGUAGE.md compiles, and every entry of it runs on seeded random weights
/// and inputs (symbolic dims bound to 3, integer inputs in [0, 2)).
#[test]
fn every_example_compiles_and_runs() {
    let files = dsl_files(&repo().join("dsl/examples"));
    assert!(
        files.len() >= 10,
        "expected the examples of LANGUAGE.md in dsl/examples"
    );
    for f in files {
        let module = match compile_file(&f, &LowerOptions::default()) {
            Ok(c) => c.module,
            Err(e) => panic!("{} does not compile:\n{e}", f.display()),
        };
        let weights = Weights::from_tensors(&module, init_weights(&module, 0)).expect("seeded weights bind");
        for func in &module.functions {
            let mut bindings = mlc_ir::Bindings::new();
            for ty in func.graph.input_types() {
                for d in &ty.shape {
                    for s in d.symbols() {
                        bindings.insert(s, 3);
                    }
                }
            }
            let inputs = init_inputs(func, &bindings, 0).expect("random inputs");
            if let Err(e) = interp::run(&module, &func.name, &weights, &inputs, &RunOptions::default()) {
                panic!("{}: entry `{}` fails: {e}", f.display(), func.name);
            }
        }
    }
}

// ---------------------------------------------------------------- std.llama

/// The three attention paths of `LlamaLayer` agree: the whole sequence at once (`attn_block`),
/// a prefix then the rest after its cached keys/values (`attn_past`), and a preallocated cache
/// written at `start` (`attn_step`). Grouped-query heads (4 query, 2 key/value).
#[test]
fn llama_layer_cached_paths_equal_the_whole_sequence() {
    let m = compile(
        "import std.llama.{LlamaLayer}
model M() {
  layer = LlamaLayer(16, 4, 2, 24, 100.0, 1e-5)
  entry whole(x: f32[1, T, 16]) {
    let (h, k, v) = layer.attn_block(x, arange(T))
    return out = layer.ffn_block(h), k = k, v = v
  }
  entry past(x: f32[1, T, 16], pk: f32[1, 2, P, 4], pv: f32[1, 2, P, 4]) {
    let (h, k, v) = layer.attn_past(x, pk, pv)
    return out = layer.ffn_block(h), k = k, v = v
  }
  entry cached(x: f32[1, T, 16], kc: f32[1, 2, S, 4], vc: f32[1, 2, S, 4], start: i64[]) {
    let (h, k, v) = layer.attn_step(x, kc, vc, start)
    return out = layer.ffn_block(h), k = k, v = v
  }
}",
    );
    let (t_all, p, s) = (7, 4, 9);
    let weights: Vec<(String, Tensor)> = init_weights(&m, 3);
    let w = || weights.iter().map(|(n, t)| (n.as_str(), t.clone())).collect::<Vec<_>>();
    let x = data(t_all * 16, 11);
    let whole = run(&m, "whole", w(), vec![("x", t(&[1, t_all, 16], x.clone()))]);
    let (out, k, v) = (f32s(&whole, "out"), f32s(&whole, "k"), f32s(&whole, "v"));
    // k, v [1, 2, T, 4]: the first p positions of each head.
    let head_prefix = |a: &[f32], from: usize, to: usize| -> Vec<f32> {
        (0..2)
            .flat_map(|h| a[(h * t_all + from) * 4..(h * t_all + to) * 4].to_vec())
            .collect()
    };
    let rest = run(
        &m,
        "past",
        w(),
        vec![
            ("x", t(&[1, t_all - p, 16], x[p * 16..].to_vec())),
            ("pk", t(&[1, 2, p, 4], head_prefix(&k, 0, p))),
            ("pv", t(&[1, 2, p, 4], head_prefix(&v, 0, p))),
        ],
    );
    assert_close("attn_past output", &f32s(&rest, "out"), &wide(&out[p * 16..]), TOL);
    assert_close(
        "attn_past new keys",
        &f32s(&rest, "k"),
        &wide(&head_prefix(&k, p, t_all)),
        TOL,
    );
    // The preallocated cache holds the prefix, then garbage that the mask must hide.
    let mut kc = data(2 * s * 4, 5);
    let mut vc = data(2 * s * 4, 6);
    for h in 0..2 {
        kc[h * s * 4..(h * s + p) * 4].copy_from_slice(&k[h * t_all * 4..(h * t_all + p) * 4]);
        vc[h * s * 4..(h * s + p) * 4].copy_from_slice(&v[h * t_all * 4..(h * t_all + p) * 4]);
    }
    let step = run(
        &m,
        "cached",
        w(),
        vec![
            ("x", t(&[1, t_all - p, 16], x[p * 16..].to_vec())),
            ("kc", t(&[1, 2, s, 4], kc)),
            ("vc", t(&[1, 2, s, 4], vc)),
            ("start", Tensor::from_i64(&[], vec![p as i64])),
        ],
    );
    assert_close("attn_step output", &f32s(&step, "out"), &wide(&out[p * 16..]), TOL);
    let cache_k = f32s(&step, "k");
    let written: Vec<f32> = (0..2)
        .flat_map(|h| cache_k[h * s * 4..(h * s + t_all) * 4].to_vec())
        .collect();
    assert_close("attn_step cache", &written, &wide(&k), TOL);
}
