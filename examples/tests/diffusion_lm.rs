//! The masked diffusion LM (`examples/diffusion_lm`, MDLM / LLaDA style) against the golden
//! outputs of the independent PyTorch implementation (`examples/diffusion_lm/reference.py`),
//! through the interpreter and the CPU backend: the denoiser's logits and MDLM's NELBO to 1e-4
//! relative; LLaDA's low-confidence sampler (greedy, and Gumbel at temperature 1 in two
//! semi-autoregressive blocks) and MDLM's ancestral sampler token for token, with the same
//! Philox stream. Plus the structural invariants of architectures.md: the committed count of
//! every step follows LLaDA's schedule (gen_len in total), committed tokens never change, the
//! prompt never changes, no [M] is left, tokens are unmasked only inside the current block,
//! τ = 0 ignores the seed, a seed fixes the sample, and the NELBO is exactly the 1/t-weighted
//! cross-entropy of the masked positions recomputed from the `denoise` entry.

mod common;

use common::{check, get, out, run};
use mlc_examples::engine::{Backend, Engine};
use mlc_runtime::{Tensor, TensorFile};

/// model.dsl's defaults, which reference.py mirrors.
const V: usize = 32;
const MASK: i64 = 31;
const P: usize = 4;
const GEN: usize = 12;
const L: usize = P + GEN;
const STEPS: usize = 8;
const ELBO_SAMPLES: usize = 4;
const NOISE_EPS: f64 = 1e-3;

fn file(name: &str) -> TensorFile {
    common::load("diffusion_lm", name)
}

fn engine(backend: Backend, set: &[(&str, String)]) -> Engine {
    let model = common::compile(
        "examples/diffusion_lm/model.dsl",
        &common::model_dsl("diffusion_lm"),
        set,
        &[],
    );
    common::engine(model, &file("weights.safetensors"), backend)
}

fn i64s(t: &Tensor) -> Vec<i64> {
    t.to_i64_vec()
}

fn seed(v: i64) -> Tensor {
    Tensor::from_i64(&[], vec![v])
}

fn denoise(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let mut e = engine(backend, &[]);
    let o = run(&mut e, "denoise", &[("tokens", get(&inputs, "tokens"))]);
    check(
        &format!("{backend:?} denoise.logits"),
        out(&o, "logits"),
        &get(&golden, "denoise.logits"),
    );
}

#[test]
fn interpreter_denoiser_matches_the_reference() {
    denoise(Backend::Interp);
}

#[test]
fn cpu_denoiser_matches_the_reference() {
    denoise(Backend::Cpu);
}

/// LLaDA's commit counts for a fully masked block: an even split, the remainder first.
fn schedule(block_len: usize, block_steps: usize) -> Vec<i64> {
    (0..block_steps)
        .map(|s| (block_len / block_steps + usize::from(s < block_len % block_steps)) as i64)
        .collect()
}

/// The invariants of one `sample` run with `block_len`: `committed` [S, B] follows the
/// schedule, `history` [S, B, L] only ever replaces [M] inside the current block, the prompt
/// stays, nothing is left masked.
fn check_llada_structure(what: &str, prompt: &[i64], o: &[(String, Tensor)], block_len: usize) {
    let b = prompt.len() / P;
    let (tokens, committed, history) = (
        i64s(out(o, "tokens")),
        i64s(out(o, "committed")),
        i64s(out(o, "history")),
    );
    assert_eq!(out(o, "committed").shape(), &[STEPS, b]);
    assert_eq!(out(o, "history").shape(), &[STEPS, b, L]);
    let block_steps = STEPS / (GEN / block_len);
    let ks = schedule(block_len, block_steps);
    for r in 0..b {
        let mut prev: Vec<i64> = prompt[r * P..(r + 1) * P].iter().copied().chain([MASK; GEN]).collect();
        let mut total = 0;
        for s in 0..STEPS {
            let (blk, k) = (s / block_steps, ks[s % block_steps]);
            assert_eq!(
                committed[s * b + r],
                k,
                "{what}: row {r} step {s} commits {} not {k}",
                committed[s * b + r]
            );
            total += committed[s * b + r];
            let now = &history[(s * b + r) * L..(s * b + r + 1) * L];
            let lo = P + blk * block_len;
            let mut changed = 0;
            for i in 0..L {
                if now[i] != prev[i] {
                    assert_eq!(
                        prev[i], MASK,
                        "{what}: row {r} step {s}: committed token at {i} changed"
                    );
                    assert!(
                        (lo..lo + block_len).contains(&i),
                        "{what}: row {r} step {s}: position {i} unmasked outside block {blk}"
                    );
                    assert_ne!(now[i], MASK);
                    assert!((0..V as i64).contains(&now[i]));
                    changed += 1;
                }
            }
            assert_eq!(changed, k, "{what}: row {r} step {s}: {changed} positions unmasked");
            if s % block_steps == block_steps - 1 {
                assert!(
                    !now[lo..lo + block_len].contains(&MASK),
                    "{what}: row {r}: block {blk} not finished"
                );
            }
            prev = now.to_vec();
        }
        assert_eq!(total, GEN as i64, "{what}: row {r}");
        let row = &tokens[r * L..(r + 1) * L];
        assert_eq!(row, &prev[..], "{what}: tokens are not the last history entry");
        assert_eq!(
            &row[..P],
            &prompt[r * P..(r + 1) * P],
            "{what}: row {r}: prompt changed"
        );
        assert!(!row.contains(&MASK), "{what}: row {r}: [M] left");
    }
}

fn llada(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let (prompt, s) = (get(&inputs, "prompt"), get(&inputs, "seed"));
    let pv = i64s(&prompt);
    let seed0 = i64s(&s)[0];
    for (name, set) in [
        ("greedy", vec![]),
        (
            "gumbel",
            vec![("temperature", "1.0".to_string()), ("block_len", "6".to_string())],
        ),
    ] {
        let what = format!("{backend:?} {name}");
        let mut e = engine(backend, &set);
        let o = run(&mut e, "sample", &[("prompt", prompt.clone()), ("seed", s.clone())]);
        for out_name in ["tokens", "committed", "history"] {
            let want = get(&golden, &format!("{name}.{out_name}"));
            assert_eq!(out(&o, out_name).shape(), want.shape(), "{what}.{out_name}");
            assert_eq!(
                i64s(out(&o, out_name)),
                i64s(&want),
                "{what}.{out_name} differs from the reference"
            );
        }
        let block_len = if name == "greedy" { GEN } else { 6 };
        check_llada_structure(&what, &pv, &o, block_len);
        // A seed fixes the sample; τ = 0 ignores it, τ > 0 does not.
        let again = run(&mut e, "sample", &[("prompt", prompt.clone()), ("seed", s.clone())]);
        assert_eq!(
            i64s(out(&again, "history")),
            i64s(out(&o, "history")),
            "{what}: same seed, other tokens"
        );
        let other = run(
            &mut e,
            "sample",
            &[("prompt", prompt.clone()), ("seed", seed(seed0 + 1))],
        );
        check_llada_structure(&format!("{what}, seed + 1"), &pv, &other, block_len);
        if name == "greedy" {
            assert_eq!(
                i64s(out(&other, "tokens")),
                i64s(out(&o, "tokens")),
                "{what}: τ = 0 depends on the seed"
            );
        } else {
            assert_ne!(
                i64s(out(&other, "tokens")),
                i64s(out(&o, "tokens")),
                "{what}: the seed does not matter"
            );
        }
    }
}

#[test]
fn interpreter_llada_sampler_matches_the_reference() {
    llada(Backend::Interp);
}

#[test]
fn cpu_llada_sampler_matches_the_reference() {
    llada(Backend::Cpu);
}

fn mdlm(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let (prompt, s) = (get(&inputs, "prompt"), get(&inputs, "seed"));
    let mut e = engine(backend, &[]);
    let o = run(&mut e, "sample_mdlm", &[("prompt", prompt.clone()), ("seed", s)]);
    let tokens = i64s(out(&o, "tokens"));
    assert_eq!(
        tokens,
        i64s(&get(&golden, "mdlm.tokens")),
        "{backend:?}: sample_mdlm differs from the reference"
    );
    let pv = i64s(&prompt);
    for r in 0..pv.len() / P {
        assert_eq!(
            &tokens[r * L..r * L + P],
            &pv[r * P..(r + 1) * P],
            "row {r}: prompt changed"
        );
        assert!(!tokens[r * L..(r + 1) * L].contains(&MASK), "row {r}: [M] left");
    }
}

#[test]
fn interpreter_mdlm_sampler_matches_the_reference() {
    mdlm(Backend::Interp);
}

#[test]
fn cpu_mdlm_sampler_matches_the_reference() {
    mdlm(Backend::Cpu);
}

/// log-softmax over the V − 1 clean tokens ([M] excluded) of one row of logits.
fn clean_log_softmax(z: &[f64]) -> Vec<f64> {
    let clean = &z[..MASK as usize];
    let m = clean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + clean.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
    clean.iter().map(|x| x - lse).collect()
}

fn elbo(backend: Backend) {
    let (inputs, golden) = (file("inputs.safetensors"), file("golden.safetensors"));
    let (x0, s) = (get(&inputs, "x0"), get(&inputs, "elbo_seed"));
    let mut e = engine(backend, &[]);
    let o = run(&mut e, "elbo", &[("x0", x0.clone()), ("seed", s)]);
    for name in ["nelbo", "loss", "t"] {
        check(
            &format!("{backend:?} elbo.{name}"),
            out(&o, name),
            &get(&golden, &format!("elbo.{name}")),
        );
    }
    let masked = out(&o, "masked").to_bool_vec();
    assert_eq!(
        masked,
        get(&golden, "elbo.masked").to_bool_vec(),
        "{backend:?}: mask draws differ"
    );

    // The estimator, recomputed from `denoise`: loss[i, b] = (1 / t) Σ_masked −log p(x0 | x_t).
    let b = x0.shape()[0];
    let (xv, t, loss, nelbo) = (
        i64s(&x0),
        out(&o, "t").to_f64_vec(),
        out(&o, "loss").to_f64_vec(),
        out(&o, "nelbo").to_f64_vec(),
    );
    let mut xt = Vec::new();
    for i in 0..ELBO_SAMPLES {
        for r in 0..b {
            for l in 0..L {
                xt.push(if masked[(i * b + r) * L + l] {
                    MASK
                } else {
                    xv[r * L + l]
                });
            }
        }
    }
    let z = run(
        &mut e,
        "denoise",
        &[("tokens", Tensor::from_i64(&[ELBO_SAMPLES * b, L], xt))],
    );
    let z = out(&z, "logits").to_f64_vec();
    for r in 0..b {
        let mut mean = 0.0;
        for i in 0..ELBO_SAMPLES {
            let ti = t[i * b + r];
            // Stratified times: draw i lies in its own 1/n of (ε, 1).
            let lo = (1.0 - NOISE_EPS) * i as f64 / ELBO_SAMPLES as f64 + NOISE_EPS;
            let hi = (1.0 - NOISE_EPS) * (i + 1) as f64 / ELBO_SAMPLES as f64 + NOISE_EPS;
            assert!(
                ti >= lo - 1e-6 && ti <= hi + 1e-6,
                "t[{i}, {r}] = {ti} outside [{lo}, {hi}]"
            );
            let mut nll = 0.0;
            for l in 0..L {
                if masked[(i * b + r) * L + l] {
                    let row = &z[((i * b + r) * L + l) * V..][..V];
                    nll -= clean_log_softmax(row)[xv[r * L + l] as usize];
                }
            }
            let want = nll / ti;
            let got = loss[i * b + r];
            assert!(
                (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                "loss[{i}, {r}] = {got}, recomputed {want}"
            );
            mean += got / ELBO_SAMPLES as f64;
        }
        assert!(
            (nelbo[r] - mean).abs() <= 1e-5 * mean.abs(),
            "nelbo[{r}] is not the mean of the draws"
        );
        println!(
            "{backend:?}: row {r} NELBO {:.3} nats ({:.3} per token)",
            nelbo[r],
            nelbo[r] / L as f64
        );
    }
}

#[test]
fn interpreter_elbo_matches_the_reference_and_its_definition() {
    elbo(Backend::Interp);
}

#[test]
fn cpu_elbo_matches_the_reference_and_its_definition() {
    elbo(Backend::Cpu);
}
