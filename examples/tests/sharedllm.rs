//! SharedLLM (`examples/sharedllm`) against the golden outputs of the independent PyTorch
//! implementation (`examples/sharedllm/reference.py`), through the interpreter and the CPU
//! backend, at two configurations (`base`: model.dsl's defaults; `gqa`: grouped-query attention,
//! tied embeddings, queries at chunk position n + 1, three chunks): the compressed context of both
//! policies, the logits of `forward` (both policies) and `vanilla` within 1e-4 of the largest
//! golden magnitude, and `generate`'s greedy tokens exactly. Plus the structural invariants of
//! architectures.md: the lower model's layer-j keys/values equal the upper (plain) model's on the
//! same tokens, with M = 0 `forward` equals `vanilla`, the compressed context has n·Lc/8 entries
//! per layer, and cached generation equals step-by-step full recomputation.

mod common;

use common::{check, check_exact, get, rel_err, run_values as run};
use mlc_examples::engine::{Backend, Engine};
use mlc_runtime::{Tensor, TensorFile};

fn file(name: &str) -> TensorFile {
    common::load("sharedllm", name)
}

/// The hyperparameters of each golden configuration (reference.py's `BASE` and `GQA`).
fn config(cfg: &str) -> Vec<(&'static str, String)> {
    match cfg {
        "base" => vec![],
        "gqa" => vec![
            ("kv_heads", "2".into()),
            ("tie_embeddings", "true".into()),
            ("query_chunk_offset", "1".into()),
            ("n_layers", "3".into()),
            ("M", "2".into()),
        ],
        _ => unreachable!(),
    }
}

/// model.dsl plus `extra` (entries for the tests), with the overrides of `cfg` and `set`, lowering
/// only `entries`, bound to the golden weights of `cfg`.
fn engine(backend: Backend, cfg: &str, set: &[(&str, String)], entries: &[&str], extra: &str) -> Engine {
    let mut all = config(cfg);
    all.extend(set.iter().cloned());
    let dsl = common::with_entries(&common::model_dsl("sharedllm"), extra);
    let model = common::compile("examples/sharedllm/model.dsl", &dsl, &all, entries);
    common::engine(model, &file(&format!("golden_{cfg}_weights.safetensors")), backend)
}

/// Every entry of one configuration against its goldens.
fn matches_reference(backend: Backend, cfg: &str) {
    let g = file(&format!("golden_{cfg}.safetensors"));
    let (context, tokens) = (get(&g, "context"), get(&g, "tokens"));
    let tag = format!("{backend:?} {cfg}");
    let entries = [
        "encode_context",
        "encode_context_query_aware",
        "forward",
        "vanilla",
        "generate",
    ];
    let mut e = engine(backend, cfg, &[], &entries, "");
    let o = run(&mut e, "encode_context", &[("context", context.clone())]);
    check(&format!("{tag} encode_context.k"), &o[0], &get(&g, "encode_context.k"));
    check(&format!("{tag} encode_context.v"), &o[1], &get(&g, "encode_context.v"));
    let o = run(
        &mut e,
        "encode_context_query_aware",
        &[("context", context.clone()), ("query", tokens.clone())],
    );
    check(
        &format!("{tag} encode_context_query_aware.k"),
        &o[0],
        &get(&g, "encode_context_query_aware.k"),
    );
    check(
        &format!("{tag} encode_context_query_aware.v"),
        &o[1],
        &get(&g, "encode_context_query_aware.v"),
    );
    let o = run(
        &mut e,
        "forward",
        &[("context", context.clone()), ("tokens", tokens.clone())],
    );
    check(&format!("{tag} forward.logits"), &o[0], &get(&g, "forward.logits"));
    let o = run(&mut e, "vanilla", &[("tokens", tokens.clone())]);
    check(&format!("{tag} vanilla.logits"), &o[0], &get(&g, "vanilla.logits"));
    let o = run(
        &mut e,
        "generate",
        &[("context", context.clone()), ("prompt", tokens.clone())],
    );
    check_exact(&format!("{tag} generate.tokens"), &o[0], &get(&g, "generate.tokens"));

    let mut e = engine(
        backend,
        cfg,
        &[("query_aware", "true".into())],
        &["forward", "generate"],
        "",
    );
    let o = run(
        &mut e,
        "forward",
        &[("context", context.clone()), ("tokens", tokens.clone())],
    );
    check(
        &format!("{tag} forward (query-aware).logits"),
        &o[0],
        &get(&g, "forward_qa.logits"),
    );
    let o = run(&mut e, "generate", &[("context", context), ("prompt", tokens)]);
    check_exact(
        &format!("{tag} generate (query-aware).tokens"),
        &o[0],
        &get(&g, "generate_qa.tokens"),
    );
}

#[test]
fn interpreter_matches_the_reference() {
    matches_reference(Backend::Interp, "base");
    matches_reference(Backend::Interp, "gqa");
}

#[test]
fn cpu_backend_matches_the_reference() {
    matches_reference(Backend::Cpu, "base");
    matches_reference(Backend::Cpu, "gqa");
}

/// A test-only entry: the plain upper model's per-layer keys (rotated) and values,
/// [n_layers, B, Hkv, T, dh].
const UPPER_KV: &str = r#"
  entry upper_kv(tokens: i64[B, T]) {
    let pos = arange(T)
    let h = embed_tokens(tokens)
    let ks = zeros([n_layers, B, kv_heads, T, dh])
    let vs = ks
    for j in 0..n_layers {
      let (h, k, v) = layers[j].attn_block(h, pos)
      let ks = dynamic_update_slice(ks, k[None], j, axis = 0)
      let vs = dynamic_update_slice(vs, v[None], j, axis = 0)
      let h = layers[j].ffn_block(h)
    }
    return k = ks, v = vs
  }
"#;

/// HF rotate-half RoPE of one head vector at position `pos`.
fn rope(x: &[f32], pos: f64, base: f64) -> Vec<f32> {
    let half = x.len() / 2;
    let mut out = vec![0f32; x.len()];
    for i in 0..half {
        let inv = base.powf(-(2.0 * i as f64) / x.len() as f64);
        let (s, c) = (pos * inv).sin_cos();
        let (a, b) = (f64::from(x[i]), f64::from(x[i + half]));
        out[i] = (a * c - b * s) as f32;
        out[i + half] = (b * c + a * s) as f32;
    }
    out
}

/// The lower model is the first M layers of the upper one: for every node of the "always right"
/// tree (tokens 0..32, 32..48, 48..56, 56..64 of each chunk, each its own sequence) the
/// compressed layer-j keys and values are the plain upper model's layer-j keys and values on
/// those tokens, strided by 16, 8, 4, 4, keys rotated once more by their chunk index.
fn lower_kv_equals_upper_kv(backend: Backend, cfg: &str) {
    let g = file(&format!("golden_{cfg}.safetensors"));
    let context = get(&g, "context");
    let (b, n, lc) = (context.shape()[0], context.shape()[1], context.shape()[2]);
    let ctx = context.to_i64_vec();
    let mut e = engine(backend, cfg, &[], &["encode_context", "upper_kv"], UPPER_KV);
    let o = run(&mut e, "encode_context", &[("context", context.clone())]);
    let (ck, cv) = (o[0].to_f32_vec(), o[1].to_f32_vec());
    let [m, _, hkv, entries, dh] = o[0].shape().try_into().unwrap();
    let per_chunk = entries / n;
    let mut worst = 0f32;
    let mut entry0 = 0;
    for (lo, hi, alpha) in [
        (0, lc / 2, 16),
        (lc / 2, 3 * lc / 4, 8),
        (3 * lc / 4, 7 * lc / 8, 4),
        (7 * lc / 8, lc, 4),
    ] {
        let len = hi - lo;
        // every chunk of every batch row as one batch of sequences
        let rows: Vec<i64> = (0..b * n)
            .flat_map(|r| ctx[r * lc + lo..r * lc + hi].to_vec())
            .collect();
        let u = run(&mut e, "upper_kv", &[("tokens", Tensor::from_i64(&[b * n, len], rows))]);
        let (uk, uv) = (u[0].to_f32_vec(), u[1].to_f32_vec());
        let layers = u[0].shape()[0];
        assert!(layers >= m);
        for j in 0..m {
            for r in 0..b * n {
                let (bi, chunk) = (r / n, r % n);
                for h in 0..hkv {
                    for (s, t) in (0..len).step_by(alpha).enumerate() {
                        let theirs = (((j * b * n + r) * hkv + h) * len + t) * dh;
                        let ours = (((j * b + bi) * hkv + h) * entries + chunk * per_chunk + entry0 + s) * dh;
                        let want_k = rope(&uk[theirs..theirs + dh], chunk as f64, 10000.0);
                        for c in 0..dh {
                            worst = worst.max((ck[ours + c] - want_k[c]).abs());
                            worst = worst.max((cv[ours + c] - uv[theirs + c]).abs());
                        }
                    }
                }
            }
        }
        entry0 += len / alpha;
    }
    assert_eq!(entry0, per_chunk, "every compressed entry compared");
    println!("{backend:?} {cfg}: lower vs upper keys/values, max abs difference {worst:.2e}");
    assert!(
        worst <= 1e-4,
        "{backend:?} {cfg}: lower-model KV differ from the upper model's by {worst}"
    );
}

#[test]
fn lower_model_keys_and_values_equal_the_upper_models() {
    lower_kv_equals_upper_kv(Backend::Cpu, "base");
    lower_kv_equals_upper_kv(Backend::Cpu, "gqa");
    lower_kv_equals_upper_kv(Backend::Interp, "base");
}

/// The plain model's per-layer keys/values (the upper model without injection) match the
/// reference's too.
#[test]
fn upper_model_keys_and_values_match_the_reference() {
    let g = file("golden_base.safetensors");
    for backend in [Backend::Interp, Backend::Cpu] {
        let mut e = engine(backend, "base", &[], &["upper_kv"], UPPER_KV);
        let o = run(&mut e, "upper_kv", &[("tokens", get(&g, "tokens"))]);
        check(&format!("{backend:?} vanilla.k"), &o[0], &get(&g, "vanilla.k"));
        check(&format!("{backend:?} vanilla.v"), &o[1], &get(&g, "vanilla.v"));
    }
}

/// With M = 0 (no lower model, no self-injection) the upper model is plain LLaMA: `forward`
/// ignores the context and equals `vanilla`.
#[test]
fn without_injection_forward_equals_vanilla() {
    let g = file("golden_base.safetensors");
    let (context, tokens) = (get(&g, "context"), get(&g, "tokens"));
    for backend in [Backend::Interp, Backend::Cpu] {
        let mut e = engine(backend, "base", &[("M", "0".into())], &["forward", "vanilla"], "");
        let f = run(
            &mut e,
            "forward",
            &[("context", context.clone()), ("tokens", tokens.clone())],
        );
        let v = run(&mut e, "vanilla", &[("tokens", tokens.clone())]);
        let err = rel_err("M = 0 forward vs vanilla", &f[0], &v[0]);
        println!("{backend:?}: M = 0 forward vs vanilla, relative difference {err:.2e}");
        assert!(
            err <= 1e-6,
            "{backend:?}: forward with M = 0 differs from vanilla by {err:e}"
        );
        check(
            &format!("{backend:?} M = 0 forward vs golden vanilla"),
            &f[0],
            &get(&g, "vanilla.logits"),
        );
    }
}

/// The compressed context holds n·Lc/8 entries per layer (compression ratio 8) for several
/// chunk lengths and chunk counts; its shape is [M, B, Hkv, n·Lc/8, dh].
#[test]
fn compressed_context_has_the_paper_ratio() {
    for (lc, n, b) in [(64usize, 1usize, 1usize), (64, 3, 2), (128, 2, 1)] {
        let mut e = engine(
            Backend::Cpu,
            "base",
            &[("chunk_len", lc.to_string())],
            &["encode_context"],
            "",
        );
        let ctx: Vec<i64> = (0..b * n * lc).map(|i| (i * 37 % 251) as i64).collect();
        let o = run(
            &mut e,
            "encode_context",
            &[("context", Tensor::from_i64(&[b, n, lc], ctx))],
        );
        assert_eq!(o[0].shape(), &[2, b, 4, n * lc / 8, 16], "k, Lc = {lc}, n = {n}");
        assert_eq!(o[1].shape(), &[2, b, 4, n * lc / 8, 16], "v, Lc = {lc}, n = {n}");
        assert_eq!((n * lc) / o[0].shape()[3], 8, "compression ratio");
    }
}

/// Greedy generation with the KV cache equals full recomputation: token i is the argmax of
/// `forward` over prompt + the first i generated tokens, at its last position ("always right"
/// policy, whose compression does not depend on the running text).
#[test]
fn cached_generation_equals_full_recomputation() {
    let g = file("golden_base.safetensors");
    let (context, prompt) = (get(&g, "context"), get(&g, "tokens"));
    let (b, t) = (prompt.shape()[0], prompt.shape()[1]);
    let mut e = engine(Backend::Cpu, "base", &[], &["forward", "generate"], "");
    let generated = run(
        &mut e,
        "generate",
        &[("context", context.clone()), ("prompt", prompt.clone())],
    )[0]
    .to_i64_vec();
    let max_new = generated.len() / b;
    let p = prompt.to_i64_vec();
    for i in 0..max_new {
        let len = t + i;
        let seq: Vec<i64> = (0..b)
            .flat_map(|r| {
                let mut row = p[r * t..(r + 1) * t].to_vec();
                row.extend_from_slice(&generated[r * max_new..r * max_new + i]);
                row
            })
            .collect();
        let lg = run(
            &mut e,
            "forward",
            &[
                ("context", context.clone()),
                ("tokens", Tensor::from_i64(&[b, len], seq)),
            ],
        );
        let lg = lg[0].to_f32_vec();
        let vocab = lg.len() / (b * len);
        for r in 0..b {
            let last = &lg[(r * len + len - 1) * vocab..(r * len + len) * vocab];
            let best = (0..vocab).fold(0, |m, k| if last[k] > last[m] { k } else { m });
            assert_eq!(best as i64, generated[r * max_new + i], "row {r}, token {i}");
        }
    }
}

/// `generate_top_p`: with a vanishing nucleus it is the greedy `generate`; a seed repeats its
/// sample and another seed gives another; both backends draw the same tokens (the same Philox
/// stream); every token lies in the vocabulary.
#[test]
fn top_p_sampling_is_seeded_and_shares_the_decoder() {
    let g = file("golden_base.safetensors");
    let (context, prompt) = (get(&g, "context"), get(&g, "tokens"));
    let inputs = |seed: i64| {
        vec![
            ("context", context.clone()),
            ("prompt", prompt.clone()),
            ("seed", Tensor::from_i64(&[], vec![seed])),
        ]
    };
    let entries = ["generate", "generate_top_p"];
    let mut tiny = engine(Backend::Cpu, "base", &[("top_p", "1e-6".into())], &entries, "");
    let greedy = run(&mut tiny, "generate", &inputs(0)[..2])[0].to_i64_vec();
    assert_eq!(run(&mut tiny, "generate_top_p", &inputs(3))[0].to_i64_vec(), greedy);

    // A wide nucleus at a high temperature: nearly uniform over the vocabulary.
    let wide = [("top_p", "0.95".to_string()), ("temperature", "4.0".to_string())];
    let mut cpu = engine(Backend::Cpu, "base", &wide, &entries, "");
    let mut interp = engine(Backend::Interp, "base", &wide, &entries, "");
    let a = run(&mut cpu, "generate_top_p", &inputs(7))[0].to_i64_vec();
    assert_eq!(
        run(&mut cpu, "generate_top_p", &inputs(7))[0].to_i64_vec(),
        a,
        "same seed"
    );
    assert_ne!(
        run(&mut cpu, "generate_top_p", &inputs(8))[0].to_i64_vec(),
        a,
        "another seed"
    );
    assert_ne!(a, greedy, "sampling at temperature 4 is not greedy");
    assert_eq!(
        run(&mut interp, "generate_top_p", &inputs(7))[0].to_i64_vec(),
        a,
        "interp = cpu"
    );
    assert!(
        a.iter().all(|&t| (0..256).contains(&t)),
        "tokens in the vocabulary: {a:?}"
    );
}
