//! The word-pooled LM (`examples/word_pooled`, Learn Your Tokens) against the golden outputs of
//! the independent PyTorch implementation (`examples/word_pooled/reference.py`), through the
//! interpreter and the CPU backend, on real text (`texts.txt`, with multi-byte characters)
//! segmented by the Rust host code (`mlc_examples::word_pooled`):
//! - the segmentation equals the reference's byte for byte, never splits a character, and keeps
//!   every non-whitespace byte;
//! - teacher-forced `forward` logits and the word encoder's pooled prefix outputs within 1e-4 of
//!   the largest golden magnitude; padding the text to a bucket of words changes nothing;
//! - greedy `generate` (words outside, characters inside, KV cache) gives exactly the reference's
//!   words and lengths, also through `generate_padded` with the prompt padded to a bucket;
//! - structure: cached generation equals recomputation (teacher-forced `forward` over prompt +
//!   generated words reproduces every generated unit and end of word), a word's encoder output
//!   depends only on its own units (padding never leaks).

mod common;

use common::{check_values as check, get, run_values as run};
use mlc_examples::engine::{Backend, Engine};
use mlc_examples::word_pooled::{PromptBatch, bucket, detokenize, segment, to_tensors, words_of};
use mlc_runtime::{Tensor, TensorFile};

const CANVAS: usize = 8;
const PREFIX: usize = 2;
const D: usize = 64;
const MAX_WORDS: usize = 64;

fn golden() -> TensorFile {
    common::load("word_pooled", "golden.safetensors")
}

fn texts() -> Vec<String> {
    let text = std::fs::read_to_string(common::example_dir("word_pooled").join("texts.txt")).expect("texts.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A test-only entry: the word encoder's prefix outputs [B, W * p, d].
const POOLED: &str = r#"
  entry pooled(words: i64[B, W, canvas], lengths: i64[B, W]) {
    return pooled = pool(words, lengths)
  }
"#;

fn engine(backend: Backend, entries: &[&str]) -> Engine {
    let dsl = common::with_entries(&common::model_dsl("word_pooled"), POOLED);
    let model = common::compile("examples/word_pooled/model.dsl", &dsl, &[], entries);
    common::engine(
        model,
        &common::load("word_pooled", "golden_weights.safetensors"),
        backend,
    )
}

/// The rows of `t` [B, R, ...] restricted to the first `r` of R, flattened.
fn first_rows(t: &Tensor, r: usize) -> Vec<f64> {
    let (b, rows) = (t.shape()[0], t.shape()[1]);
    let inner = t.numel() / (b * rows);
    let v = t.to_f64_vec();
    (0..b)
        .flat_map(|i| v[i * rows * inner..][..r * inner].to_vec())
        .collect()
}

/// The segmented texts of texts.txt, padded to `w` words.
fn text_inputs(w: usize) -> (Tensor, Tensor) {
    let rows: Vec<Vec<Vec<u8>>> = texts().iter().map(|t| segment(t, CANVAS)).collect();
    to_tensors(&rows, w, CANVAS).unwrap()
}

#[test]
fn segmentation_of_real_text_matches_the_reference() {
    let g = golden();
    let (words, lengths) = (get(&g, "forward.words"), get(&g, "forward.lengths"));
    let (w_words, w_lengths) = text_inputs(words.shape()[1]);
    assert_eq!(w_words.to_i64_vec(), words.to_i64_vec(), "bytes of every word");
    assert_eq!(w_lengths.to_i64_vec(), lengths.to_i64_vec(), "lengths");
    for text in texts() {
        let words = segment(&text, CANVAS);
        for w in &words {
            assert!(!w.is_empty() && w.len() <= CANVAS, "{w:?}");
            assert!(std::str::from_utf8(w).is_ok(), "a character was split: {w:?}");
        }
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(
            words.concat(),
            squeezed.as_bytes(),
            "every non-whitespace byte, in order"
        );
    }
    let show = |t: &str| {
        segment(t, CANVAS)
            .iter()
            .map(|w| String::from_utf8(w.clone()).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        show("Straßenbahn um 8:15."),
        ["Straßen", "bahn", "um", "8", ":", "15", "."]
    );
    assert_eq!(show("東京の天気 🦊—ok"), ["東京", "の天", "気", "🦊", "—", "ok"]);
    assert_eq!(show("Привет,мир!"), ["Прив", "ет", ",", "мир", "!"]);
    assert_eq!(detokenize(&segment("naïve  café", CANVAS)), "naïve café");
    assert_eq!((bucket(1), bucket(8), bucket(9), bucket(22)), (8, 8, 16, 32));
}

fn forward_matches(backend: Backend) {
    let g = golden();
    let mut e = engine(backend, &["forward", "pooled"]);
    let (words, lengths) = (get(&g, "forward.words"), get(&g, "forward.lengths"));
    let w = words.shape()[1];
    let o = run(
        &mut e,
        "forward",
        &[("words", words.clone()), ("lengths", lengths.clone())],
    );
    let want = get(&g, "forward.logits");
    assert_eq!(o[0].shape(), want.shape());
    check(
        &format!("{backend:?} forward.logits"),
        &o[0].to_f64_vec(),
        &want.to_f64_vec(),
    );
    let o = run(&mut e, "pooled", &[("words", words), ("lengths", lengths)]);
    check(
        &format!("{backend:?} pooled"),
        &o[0].to_f64_vec(),
        &get(&g, "forward.pooled").to_f64_vec(),
    );
    // the same text padded to its bucket of words: the real rows are unchanged (causal LM)
    let wb = bucket(w);
    assert!(wb > w);
    let (bw, bl) = text_inputs(wb);
    let o = run(&mut e, "forward", &[("words", bw), ("lengths", bl)]);
    assert_eq!(o[0].shape()[1], wb - 1);
    check(
        &format!("{backend:?} forward.logits, {w} words in a bucket of {wb}"),
        &first_rows(&o[0], w - 1),
        &want.to_f64_vec(),
    );
}

#[test]
fn interpreter_forward_matches_the_reference() {
    forward_matches(Backend::Interp);
}

#[test]
fn cpu_forward_matches_the_reference() {
    forward_matches(Backend::Cpu);
}

fn generate_matches(backend: Backend) {
    let g = golden();
    let mut e = engine(backend, &["generate", "generate_padded"]);
    let (words, lengths) = (get(&g, "generate.words"), get(&g, "generate.lengths"));
    let (want_w, want_l) = (get(&g, "generate.new_words"), get(&g, "generate.new_lengths"));
    let o = run(
        &mut e,
        "generate",
        &[("words", words.clone()), ("lengths", lengths.clone())],
    );
    assert_eq!(o[0].shape(), want_w.shape());
    assert_eq!(o[0].to_i64_vec(), want_w.to_i64_vec(), "{backend:?} generate: words");
    assert_eq!(o[1].to_i64_vec(), want_l.to_i64_vec(), "{backend:?} generate: lengths");
    // the prompt padded to its bucket by the host code, the prompt length as an input
    let n = words.shape()[1];
    let rows: Vec<String> = texts().iter().map(|t| detokenize(&segment(t, CANVAS)[..n])).collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let batch = PromptBatch::new(&rows, CANVAS, MAX_WORDS).unwrap();
    assert_eq!(batch.words.shape(), &[2, bucket(n), CANVAS]);
    let o = run(
        &mut e,
        "generate_padded",
        &[
            ("words", batch.words),
            ("lengths", batch.lengths),
            ("n_words", batch.n_words),
        ],
    );
    assert_eq!(
        o[0].to_i64_vec(),
        want_w.to_i64_vec(),
        "{backend:?} generate_padded: words"
    );
    assert_eq!(
        o[1].to_i64_vec(),
        want_l.to_i64_vec(),
        "{backend:?} generate_padded: lengths"
    );
    for r in 0..2 {
        println!("{backend:?} row {r}: {:?}", detokenize(&words_of(&o[0], &o[1], r)));
    }
}

#[test]
fn interpreter_generation_matches_the_reference() {
    generate_matches(Backend::Interp);
}

#[test]
fn cpu_generation_matches_the_reference() {
    generate_matches(Backend::Cpu);
}

/// Teacher-forced `forward` over prompt + generated words predicts every generated unit and the
/// end of every word that is shorter than the canvas: the nested cached loop equals the
/// parallel recomputation.
#[test]
fn cached_generation_equals_recomputation() {
    let g = golden();
    let mut e = engine(Backend::Cpu, &["generate", "forward"]);
    let (words, lengths) = (get(&g, "generate.words"), get(&g, "generate.lengths"));
    let (b, n) = (words.shape()[0], words.shape()[1]);
    let o = run(
        &mut e,
        "generate",
        &[("words", words.clone()), ("lengths", lengths.clone())],
    );
    let max_new = o[0].shape()[1];
    let (nw, nl) = (o[0].to_i64_vec(), o[1].to_i64_vec());
    let (pw, pl) = (words.to_i64_vec(), lengths.to_i64_vec());
    let total = n + max_new;
    let mut all_w = Vec::new();
    let mut all_l = Vec::new();
    for r in 0..b {
        all_w.extend_from_slice(&pw[r * n * CANVAS..(r + 1) * n * CANVAS]);
        all_w.extend_from_slice(&nw[r * max_new * CANVAS..(r + 1) * max_new * CANVAS]);
        all_l.extend_from_slice(&pl[r * n..(r + 1) * n]);
        all_l.extend_from_slice(&nl[r * max_new..(r + 1) * max_new]);
    }
    let lg = run(
        &mut e,
        "forward",
        &[
            ("words", Tensor::from_i64(&[b, total, CANVAS], all_w.clone())),
            ("lengths", Tensor::from_i64(&[b, total], all_l)),
        ],
    )[0]
    .to_f32_vec();
    let vocab = lg.len() / (b * (total - 1) * CANVAS);
    for r in 0..b {
        for j in 0..max_new {
            let row = n - 1 + j; // logits row `row` predicts word row + 1
            let len = nl[r * max_new + j] as usize;
            for c in 0..(len + 1).min(CANVAS) {
                let at = ((r * (total - 1) + row) * CANVAS + c) * vocab;
                let logits = &lg[at..at + vocab];
                let best = (0..vocab).fold(0, |m, k| if logits[k] > logits[m] { k } else { m });
                assert_eq!(
                    best as i64,
                    all_w[(r * total + n + j) * CANVAS + c],
                    "row {r}, word {j}, unit {c}"
                );
            }
        }
    }
}

/// A word's pooled vectors depend only on its own units: the same word alone, or with garbage in
/// its padding slots, or next to other words, pools to the same p vectors.
#[test]
fn padding_never_leaks_into_the_word_encoder() {
    let g = golden();
    let mut e = engine(Backend::Cpu, &["pooled"]);
    let (words, lengths) = (get(&g, "forward.words"), get(&g, "forward.lengths"));
    let (b, w) = (words.shape()[0], words.shape()[1]);
    let base = run(
        &mut e,
        "pooled",
        &[("words", words.clone()), ("lengths", lengths.clone())],
    )[0]
    .to_f32_vec();
    // garbage after every word's length
    let mut noisy = words.to_i64_vec();
    let l = lengths.to_i64_vec();
    for (i, chunk) in noisy.chunks_mut(CANVAS).enumerate() {
        for (c, u) in chunk.iter_mut().enumerate() {
            if c as i64 >= l[i] {
                *u = ((i * 31 + c * 7) % 255 + 1) as i64;
            }
        }
    }
    let o = run(
        &mut e,
        "pooled",
        &[
            ("words", Tensor::from_i64(&[b, w, CANVAS], noisy.clone())),
            ("lengths", lengths.clone()),
        ],
    )[0]
    .to_f32_vec();
    let diff = base.iter().zip(&o).map(|(a, c)| (a - c).abs()).fold(0.0, f32::max);
    assert!(diff <= 1e-5, "padding slots changed the pooled vectors by {diff}");
    // each word alone (a batch of B*W one-word texts)
    let o = run(
        &mut e,
        "pooled",
        &[
            ("words", Tensor::from_i64(&[b * w, 1, CANVAS], noisy)),
            ("lengths", Tensor::from_i64(&[b * w, 1], l)),
        ],
    )[0]
    .to_f32_vec();
    assert_eq!(o.len(), b * w * PREFIX * D);
    let diff = base.iter().zip(&o).map(|(a, c)| (a - c).abs()).fold(0.0, f32::max);
    assert!(diff <= 1e-5, "a word pooled alone differs by {diff}");
}
