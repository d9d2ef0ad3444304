//! The Large Concept Model (`examples/lcm`) over real sentence embeddings: all-MiniLM-L6-v2, run
//! by mlc itself (`mlc_examples::minilm::MiniLm`), embeds the sentences of `sentences.txt`
//! (384-d concepts), and a small LCM (`--set sonar_dim=384`) with the seeded random weights of
//! the independent PyTorch implementation (`examples/lcm/reference.py`) runs on them, through the
//! interpreter and the CPU backend:
//! - mlc's MiniLM embeddings equal sentence-transformers' (the reference's inputs) within 1e-4;
//! - Base-LCM: `forward` (next-embedding regression) and `generate_base` (sentence loop);
//! - Two-Tower: `denoise` (x0 prediction with the shifted-causal mask) and `generate` (sentences
//!   outside, DDIM steps inside, classifier-free guidance on a doubled batch, guidance rescale,
//!   initial noise scale; the same Philox noise as the reference), at the defaults, with
//!   guidance 1 and no rescale (the reference runs the conditional branch alone), and with a
//!   lower stopping threshold (rows stop after 4 and 3 sentences);
//!   continuous outputs within 1e-4 of the largest golden magnitude, lengths exactly.
//! - structure: the Base-LCM is causal; sampling is deterministic for a seed and the seed
//!   matters; zero-initialised AdaLN modulators make the denoiser ignore context and timestep.

mod common;

use std::sync::OnceLock;

use common::{check, get, rel_err, run_values as run};
use mlc_examples::assets::MINILM;
use mlc_examples::engine::{Backend, Engine};
use mlc_examples::minilm::MiniLm;
use mlc_runtime::{Tensor, TensorFile, Weights};

const D: usize = 384;

fn load(name: &str) -> TensorFile {
    common::load("lcm", name)
}

/// The embeddings of the six sentences and of "End of text." computed by mlc's MiniLM (once).
fn minilm_embeddings() -> &'static (Vec<Vec<f32>>, Vec<f32>) {
    static CELL: OnceLock<(Vec<Vec<f32>>, Vec<f32>)> = OnceLock::new();
    CELL.get_or_init(|| {
        let text = std::fs::read_to_string(common::example_dir("lcm").join("sentences.txt")).expect("sentences.txt");
        let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let model_dir = MINILM.locate().unwrap_or_else(|e| panic!("{e}"));
        let mut minilm = MiniLm::load(&model_dir, Backend::Cpu).unwrap_or_else(|e| panic!("{e}"));
        let mut e = minilm.embed(&sentences, 8).unwrap_or_else(|e| panic!("{e}"));
        let eot = e.pop().unwrap();
        (e, eot)
    })
}

/// The prompt [2, 3, 384] (sentences 0-2 and 3-5) and eot [384] from mlc's embeddings.
fn prompt_and_eot() -> (Tensor, Tensor) {
    let (e, eot) = minilm_embeddings();
    (
        Tensor::from_f32(&[2, 3, D], e.concat()),
        Tensor::from_f32(&[D], eot.clone()),
    )
}

fn compile(set: &[(&str, String)], entries: &[&str]) -> mlc_runtime::Model {
    let mut all = vec![("sonar_dim", D.to_string())];
    all.extend(set.iter().cloned());
    common::compile("examples/lcm/model.dsl", &common::model_dsl("lcm"), &all, entries)
}

fn engine(backend: Backend, set: &[(&str, String)], entries: &[&str]) -> Engine {
    common::engine(compile(set, entries), &load("golden_weights.safetensors"), backend)
}

#[test]
fn minilm_embeddings_match_the_references_inputs() {
    let g = load("golden.safetensors");
    let (e, eot) = minilm_embeddings();
    let want = get(&g, "embeddings").to_f32_vec();
    let got = e.concat();
    let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let err_eot = eot
        .iter()
        .zip(get(&g, "eot").to_f32_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    println!("MiniLM embeddings: max abs error {err:.2e}, eot {err_eot:.2e}");
    assert!(err <= 1e-4 && err_eot <= 1e-4, "{err} {err_eot}");
}

fn base_lcm(backend: Backend) {
    let g = load("golden.safetensors");
    let (prompt, eot) = prompt_and_eot();
    let mut e = engine(backend, &[], &["forward", "generate_base"]);
    let o = run(&mut e, "forward", &[("x", prompt.clone())]);
    check(
        &format!("{backend:?} forward.predictions"),
        &o[0],
        &get(&g, "forward.predictions"),
    );
    let o = run(&mut e, "generate_base", &[("prompt", prompt), ("eot", eot)]);
    check(
        &format!("{backend:?} generate_base.sentences"),
        &o[0],
        &get(&g, "generate_base.sentences"),
    );
    assert_eq!(
        o[1].to_i64_vec(),
        get(&g, "generate_base.lengths").to_i64_vec(),
        "{backend:?} lengths"
    );
}

#[test]
fn interpreter_base_lcm_matches_the_reference() {
    base_lcm(Backend::Interp);
}

#[test]
fn cpu_base_lcm_matches_the_reference() {
    base_lcm(Backend::Cpu);
}

/// One `generate` run against the golden `name.*`.
fn check_generate(backend: Backend, set: &[(&str, String)], name: &str, lengths: bool) {
    let g = load("golden.safetensors");
    let (prompt, eot) = prompt_and_eot();
    let mut e = engine(backend, set, &["generate"]);
    let o = run(
        &mut e,
        "generate",
        &[("prompt", prompt), ("eot", eot), ("seed", Tensor::scalar_i64(7))],
    );
    check(
        &format!("{backend:?} {name}.sentences"),
        &o[0],
        &get(&g, &format!("{name}.sentences")),
    );
    if lengths {
        assert_eq!(
            o[1].to_i64_vec(),
            get(&g, &format!("{name}.lengths")).to_i64_vec(),
            "{backend:?} {name}"
        );
    }
}

fn two_tower(backend: Backend) {
    let g = load("golden.safetensors");
    let (prompt, _) = prompt_and_eot();
    let mut e = engine(backend, &[], &["denoise"]);
    let o = run(
        &mut e,
        "denoise",
        &[
            ("x_t", get(&g, "denoise.x_t")),
            ("t", get(&g, "denoise.t")),
            ("x", prompt),
        ],
    );
    check(&format!("{backend:?} denoise.x0"), &o[0], &get(&g, "denoise.x0"));
    check_generate(backend, &[], "generate", true);
    check_generate(backend, &[("stop_threshold", "0.6".into())], "generate_stop", true);
}

#[test]
fn interpreter_two_tower_matches_the_reference() {
    two_tower(Backend::Interp);
}

#[test]
fn cpu_two_tower_matches_the_reference() {
    two_tower(Backend::Cpu);
}

/// With guidance scale 1 and no rescale, the doubled-batch CFG path equals the conditional
/// branch alone (which is how the reference computes this golden).
#[test]
fn unit_guidance_equals_the_conditional_branch() {
    let set = [
        ("guidance_scale", "1.0".to_string()),
        ("guidance_rescale", "0.0".to_string()),
    ];
    check_generate(Backend::Cpu, &set, "generate_g1", true);
}

/// DDIM with eta = 0 is deterministic for a seed (the same run twice is bit-identical) and the
/// seed is the only randomness (another seed gives other sentences).
#[test]
fn sampling_is_deterministic_for_a_seed() {
    let (prompt, eot) = prompt_and_eot();
    let mut e = engine(Backend::Cpu, &[], &["generate"]);
    let mut sample = |seed: i64| {
        run(
            &mut e,
            "generate",
            &[
                ("prompt", prompt.clone()),
                ("eot", eot.clone()),
                ("seed", Tensor::scalar_i64(seed)),
            ],
        )[0]
        .to_f32_vec()
    };
    let (a, b, c) = (sample(7), sample(7), sample(8));
    assert_eq!(a, b, "same seed, same sentences");
    let diff = a.iter().zip(&c).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    assert!(diff > 1e-3, "another seed changed nothing ({diff})");
}

/// The Base-LCM is causal: the predictions for the first two sentences do not depend on the
/// third.
#[test]
fn base_lcm_is_causal() {
    let (prompt, _) = prompt_and_eot();
    let mut e = engine(Backend::Cpu, &[], &["forward"]);
    let full = run(&mut e, "forward", &[("x", prompt.clone())])[0].to_f32_vec();
    let p = prompt.to_f32_vec();
    let first2: Vec<f32> = (0..2).flat_map(|b| p[b * 3 * D..(b * 3 + 2) * D].to_vec()).collect();
    let part = run(&mut e, "forward", &[("x", Tensor::from_f32(&[2, 2, D], first2))])[0].to_f32_vec();
    for b in 0..2 {
        for i in 0..2 * D {
            let (x, y) = (part[b * 2 * D + i], full[b * 3 * D + i]);
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "row {b}, value {i}: {x} vs {y}"
            );
        }
    }
}

/// Zero-initialised AdaLN modulators (the paper's initialisation) gate every sub-block to 0 and
/// leave the final norm unmodulated: the denoiser is then the identity on its residual stream,
/// post(final_norm(pre(x_t))), whatever the context and the timestep.
#[test]
fn zero_adaln_makes_the_denoiser_ignore_context_and_time() {
    let g = load("golden.safetensors");
    let mut model = compile(&[], &["denoise"]);
    let file = load("golden_weights.safetensors");
    let tensors: Vec<(String, Tensor)> = file
        .names()
        .into_iter()
        .map(|n| {
            let t = file.get(n).unwrap();
            let t = if n.contains("modulator") {
                Tensor::from_f32(t.shape(), vec![0.0; t.numel()])
            } else {
                t
            };
            (n.to_string(), t)
        })
        .collect();
    model.set_weights(Weights::from_tensors(model.module(), tensors).unwrap_or_else(|e| panic!("{e:?}")));
    let mut e = Engine::new(model, Backend::Cpu).unwrap();
    let x_t = get(&g, "denoise.x_t");
    let (prompt, _) = prompt_and_eot();
    let a = run(
        &mut e,
        "denoise",
        &[("x_t", x_t.clone()), ("t", get(&g, "denoise.t")), ("x", prompt.clone())],
    );
    let other_t = Tensor::from_i64(&[2, 3], vec![0, 10, 20, 50, 90, 99]);
    let other_x = Tensor::from_f32(&[2, 3, D], prompt.to_f32_vec().iter().rev().copied().collect());
    let b = run(&mut e, "denoise", &[("x_t", x_t), ("t", other_t), ("x", other_x)]);
    let err = rel_err("zero modulators, other context and time", &b[0], &a[0]);
    assert!(err <= 1e-6, "with zero modulators the output moved by {err:e}");
    assert!(
        rel_err("zero modulators vs denoise.x0", &a[0], &get(&g, "denoise.x0")) > 1e-2,
        "the trained-like modulators do matter"
    );
}
