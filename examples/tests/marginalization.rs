//! Generative Marginalization Models (`examples/marginalization`) against the golden outputs of
//! the independent PyTorch implementation (`examples/marginalization/reference.py`), through the
//! interpreter and the CPU backend: log marginals, conditionals, the self-consistency terms (to
//! 1e-4 relative), and any-order samples with the same Philox stream (orders and values exactly).
//! Plus the structural invariants of architectures.md: f(?…?) = log Z, normalised conditionals,
//! the self-consistency entry computes exactly logsumexp_k log p(x_s, x_i = k) − log p(x_s) from
//! the model's own marginals, and sampling is deterministic for a seed, writes every "?" exactly
//! once along a permutation and keeps observed values.

mod common;

use common::{check, get, out, run};
use mlc_examples::engine::{Backend, Engine};
use mlc_runtime::{Tensor, TensorFile};

/// The default configuration of model.dsl, which reference.py mirrors.
const D: usize = 8;
const K: usize = 4;
const UNKNOWN: i64 = K as i64;

fn file(name: &str) -> TensorFile {
    common::load("marginalization", name)
}

fn engine(backend: Backend) -> Engine {
    let model = common::compile(
        "examples/marginalization/model.dsl",
        &common::model_dsl("marginalization"),
        &[],
        &[],
    );
    common::engine(model, &file("weights.safetensors"), backend)
}

fn i64s(t: &Tensor) -> Vec<i64> {
    t.as_i64().expect("i64 tensor").to_vec()
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.as_f32().expect("f32 tensor").to_vec()
}

fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn marginals_and_conditionals(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let mut e = engine(backend);
    let x = get(&inputs, "x");
    let o = run(&mut e, "log_marginal", &[("x", x.clone())]);
    check(
        &format!("{backend:?} log_marginal.log_p"),
        out(&o, "log_p"),
        &get(&golden, "log_marginal.log_p"),
    );
    check(
        &format!("{backend:?} log_marginal.log_z"),
        out(&o, "log_z"),
        &get(&golden, "log_marginal.log_z"),
    );
    // Row 0 is all "?": log p(?…?) = f(?…?) − log Z = 0.
    assert!(
        f32s(out(&o, "log_p"))[0].abs() < 1e-6,
        "log p of the empty observation is not 0"
    );

    let o = run(&mut e, "conditional", &[("x", x.clone())]);
    let lp = out(&o, "logp");
    check(
        &format!("{backend:?} conditional.logp"),
        lp,
        &get(&golden, "conditional.logp"),
    );
    // Normalised at every "?" position, a delta at every observed one.
    let (xv, lpv) = (i64s(&x), lp.to_f64_vec());
    for (i, &xi) in xv.iter().enumerate() {
        let row = &lpv[i * K..(i + 1) * K];
        if xi == UNKNOWN {
            assert!(
                logsumexp(row).abs() < 1e-5,
                "conditional at {i} sums to {}",
                logsumexp(row).exp()
            );
        } else {
            for (k, &l) in row.iter().enumerate() {
                assert_eq!(l, if k as i64 == xi { 0.0 } else { f64::NEG_INFINITY }, "delta at {i}");
            }
        }
    }
}

#[test]
fn interpreter_log_marginals_and_conditionals_match_the_reference() {
    marginals_and_conditionals(Backend::Interp);
}

#[test]
fn cpu_log_marginals_and_conditionals_match_the_reference() {
    marginals_and_conditionals(Backend::Cpu);
}

/// The self-consistency entry against the reference, and against its definition recomputed from
/// the model's own `log_marginal` and `conditional` entries.
fn self_consistency(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let mut e = engine(backend);
    let (x, pos) = (get(&inputs, "sc_x"), get(&inputs, "sc_pos"));
    let o = run(&mut e, "self_consistency", &[("x", x.clone()), ("pos", pos.clone())]);
    for name in ["log_p", "log_p_sum", "log_p_next", "cond_logp", "gap", "err"] {
        check(
            &format!("{backend:?} self_consistency.{name}"),
            out(&o, name),
            &get(&golden, &format!("self_consistency.{name}")),
        );
    }
    let b = pos.shape()[0];
    let (xv, posv) = (i64s(&x), i64s(&pos));
    let (lp, lsum, next) = (
        out(&o, "log_p").to_f64_vec(),
        out(&o, "log_p_sum").to_f64_vec(),
        out(&o, "log_p_next").to_f64_vec(),
    );
    let (cond, gap, err) = (
        out(&o, "cond_logp").to_f64_vec(),
        out(&o, "gap").to_f64_vec(),
        out(&o, "err").to_f64_vec(),
    );
    // x_s (x with pos marginalised out) and its K completions, as log_marginal inputs.
    let mut xs = xv.clone();
    let mut xk = Vec::new();
    for r in 0..b {
        xs[r * D + posv[r] as usize] = UNKNOWN;
        for k in 0..K {
            let mut row = xs[r * D..(r + 1) * D].to_vec();
            row[posv[r] as usize] = k as i64;
            xk.extend(row);
        }
    }
    let direct = run(&mut e, "log_marginal", &[("x", Tensor::from_i64(&[b, D], xs.clone()))]);
    let direct = out(&direct, "log_p").to_f64_vec();
    let direct_k = run(&mut e, "log_marginal", &[("x", Tensor::from_i64(&[b * K, D], xk))]);
    let direct_k = out(&direct_k, "log_p").to_f64_vec();
    let conds = run(&mut e, "conditional", &[("x", Tensor::from_i64(&[b, D], xs))]);
    let conds = out(&conds, "logp").to_f64_vec();
    let mut max_gap = 0.0f64;
    for r in 0..b {
        assert!(
            (lp[r] - direct[r]).abs() < 1e-5,
            "row {r}: log_p is not log_marginal(x_s)"
        );
        for k in 0..K {
            assert!(
                (next[r * K + k] - direct_k[r * K + k]).abs() < 1e-5,
                "row {r}: log_p_next[{k}]"
            );
            let c = conds[(r * D + posv[r] as usize) * K + k];
            assert!(
                (cond[r * K + k] - c).abs() < 1e-5,
                "row {r}: cond_logp[{k}] is not conditional(x_s)[pos]"
            );
            let e = lp[r] + cond[r * K + k] - next[r * K + k];
            assert!((err[r * K + k] - e).abs() < 1e-5, "row {r}: err[{k}]");
        }
        let lse = logsumexp(&next[r * K..(r + 1) * K]);
        assert!(
            (lsum[r] - lse).abs() < 1e-5,
            "row {r}: log_p_sum {} is not logsumexp {lse}",
            lsum[r]
        );
        assert!(
            (gap[r] - (lse - lp[r])).abs() < 1e-5,
            "row {r}: gap is not the difference"
        );
        max_gap = max_gap.max(gap[r].abs());
    }
    let msq = err.iter().map(|e| e * e).sum::<f64>() / err.len() as f64;
    println!("{backend:?}: self-consistency gap max {max_gap:.4} nats, one-step error mean square {msq:.4}");
}

#[test]
fn interpreter_self_consistency_matches_the_reference_and_its_definition() {
    self_consistency(Backend::Interp);
}

#[test]
fn cpu_self_consistency_matches_the_reference_and_its_definition() {
    self_consistency(Backend::Cpu);
}

/// Any-order sampling: the Philox stream of reference.py, exactly.
fn sampling(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let mut e = engine(backend);
    let (x, seed) = (get(&inputs, "sample_x"), get(&inputs, "seed"));
    let b = x.shape()[0];
    let o = run(&mut e, "sample", &[("x", x.clone()), ("seed", seed.clone())]);
    let (samples, order) = (i64s(out(&o, "samples")), i64s(out(&o, "order")));
    assert_eq!(samples, i64s(&get(&golden, "sample.samples")), "{backend:?}: samples");
    assert_eq!(order, i64s(&get(&golden, "sample.order")), "{backend:?}: order σ");
    check(
        &format!("{backend:?} sample.logp"),
        out(&o, "logp"),
        &get(&golden, "sample.logp"),
    );

    // Same seed, same sample; the next seed gives the reference's other sample.
    let again = run(&mut e, "sample", &[("x", x.clone()), ("seed", seed.clone())]);
    assert_eq!(i64s(out(&again, "samples")), samples, "same seed, another sample");
    assert_eq!(
        f32s(out(&again, "logp")),
        f32s(out(&o, "logp")),
        "same seed, another logp"
    );
    let s2 = Tensor::from_i64(&[], vec![i64s(&seed)[0] + 1]);
    let o2 = run(&mut e, "sample", &[("x", x.clone()), ("seed", s2)]);
    assert_eq!(i64s(out(&o2, "samples")), i64s(&get(&golden, "sample_seed2.samples")));
    assert_eq!(i64s(out(&o2, "order")), i64s(&get(&golden, "sample_seed2.order")));
    assert_ne!(i64s(out(&o2, "samples")), samples, "the seed does not matter");

    // Structure: σ is a permutation with the "?" positions first; values in range; observed
    // values kept; logp is the sum of the conditionals along σ (replayed with `conditional`).
    let xv = i64s(&x);
    let logp = out(&o, "logp").to_f64_vec();
    for r in 0..b {
        let row = &order[r * D..(r + 1) * D];
        let mut seen = [false; D];
        for &p in row {
            assert!(!seen[p as usize], "row {r}: σ repeats {p}");
            seen[p as usize] = true;
        }
        let n_free = xv[r * D..(r + 1) * D].iter().filter(|&&v| v == UNKNOWN).count();
        assert!(
            row[..n_free].iter().all(|&p| xv[r * D + p as usize] == UNKNOWN),
            "row {r}: σ puts an observed position first"
        );
        for i in 0..D {
            let (s, x0) = (samples[r * D + i], xv[r * D + i]);
            assert!((0..K as i64).contains(&s), "row {r}: value {s} out of range");
            if x0 != UNKNOWN {
                assert_eq!(s, x0, "row {r}: observed value changed");
            }
        }
        // Replay: state before step t = the sample with the "?" positions σ(t..) reset.
        let mut total = 0.0f64;
        for t in 0..n_free {
            let mut state = samples[r * D..(r + 1) * D].to_vec();
            for &p in &row[t..n_free] {
                state[p as usize] = UNKNOWN;
            }
            let c = run(&mut e, "conditional", &[("x", Tensor::from_i64(&[1, D], state))]);
            let c = out(&c, "logp").to_f64_vec();
            let p = row[t] as usize;
            total += c[p * K + samples[r * D + p] as usize];
        }
        assert!(
            (total - logp[r]).abs() < 1e-4,
            "row {r}: logp {} is not the replayed sum {total}",
            logp[r]
        );
    }
}

#[test]
fn interpreter_sampling_matches_the_reference_stream() {
    sampling(Backend::Interp);
}

#[test]
fn cpu_sampling_matches_the_reference_stream() {
    sampling(Backend::Cpu);
}
