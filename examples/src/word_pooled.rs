//! The host side of the word-pooled LM (`examples/word_pooled`, Learn Your Tokens): raw UTF-8
//! text to the model's padded `[words, C0]` byte layout and back, with padding buckets so that
//! one compiled binding serves every text length up to the bucket.
//!
//! Segmentation (the same rule as `examples/word_pooled/reference.py`): a word is a maximal run
//! of alphanumeric characters; every other non-whitespace character is a word of its own;
//! whitespace separates words and is dropped; a word longer than `canvas` bytes is cut, at
//! character boundaries, into pieces of at most `canvas` bytes. The units are the UTF-8 bytes
//! (1..=255); 0 is the padding unit (and the end-of-word prediction), so NUL characters are
//! dropped.

use mlc_runtime::Tensor;

use crate::ExampleError;

/// Splits `text` into words of 1..=`canvas` UTF-8 bytes (see the module documentation).
/// `canvas` must be at least 4, the longest UTF-8 character.
pub fn segment(text: &str, canvas: usize) -> Vec<Vec<u8>> {
    assert!(canvas >= 4, "a canvas holds at least one UTF-8 character");
    let mut words = Vec::new();
    let mut run = String::new();
    let flush = |word: &str, words: &mut Vec<Vec<u8>>| {
        let mut piece = Vec::new();
        for ch in word.chars() {
            let mut buf = [0u8; 4];
            let bytes = ch.encode_utf8(&mut buf).as_bytes();
            if piece.len() + bytes.len() > canvas {
                words.push(std::mem::take(&mut piece));
            }
            piece.extend_from_slice(bytes);
        }
        if !piece.is_empty() {
            words.push(piece);
        }
    };
    for ch in text.chars() {
        if ch == '\0' {
            continue;
        }
        if ch.is_alphanumeric() {
            run.push(ch);
            continue;
        }
        if !run.is_empty() {
            flush(&run, &mut words);
            run.clear();
        }
        if !ch.is_whitespace() {
            flush(ch.encode_utf8(&mut [0u8; 4]), &mut words);
        }
    }
    if !run.is_empty() {
        flush(&run, &mut words);
    }
    words
}

/// The padding bucket of `n` words: the smallest power of two that is at least `n` and at
/// least 8. Texts whose word counts share a bucket share one set of dim bindings (one arena
/// layout) in the CPU backend.
pub fn bucket(n: usize) -> usize {
    n.max(8).next_power_of_two()
}

/// Rows of words as the model's inputs: `words` i64 [B, w, canvas] (bytes, 0-padded) and
/// `lengths` i64 [B, w], rows padded with empty words (length 0) up to `w`. Errors when a row has
/// more than `w` words.
pub fn to_tensors(rows: &[Vec<Vec<u8>>], w: usize, canvas: usize) -> Result<(Tensor, Tensor), ExampleError> {
    let b = rows.len();
    let mut units = vec![0i64; b * w * canvas];
    let mut lengths = vec![0i64; b * w];
    for (r, row) in rows.iter().enumerate() {
        if row.len() > w {
            return Err(ExampleError::Input(format!(
                "row {r} has {} words, more than {w}",
                row.len()
            )));
        }
        for (i, word) in row.iter().enumerate() {
            if word.len() > canvas {
                return Err(ExampleError::Input(format!(
                    "word {i} of row {r} is longer than {canvas} bytes"
                )));
            }
            for (c, &byte) in word.iter().enumerate() {
                units[(r * w + i) * canvas + c] = i64::from(byte);
            }
            lengths[r * w + i] = word.len() as i64;
        }
    }
    Ok((
        Tensor::from_i64(&[b, w, canvas], units),
        Tensor::from_i64(&[b, w], lengths),
    ))
}

/// A batch of prompts for the `generate_padded` entry: every text segmented, rows padded to the
/// bucket of their word count. All rows must have the same number of words (the entry takes one
/// prompt length for the batch).
pub struct PromptBatch {
    /// i64 [B, bucket, canvas].
    pub words: Tensor,
    /// i64 [B, bucket].
    pub lengths: Tensor,
    /// The number of real words of every row, an i64 scalar.
    pub n_words: Tensor,
}

impl PromptBatch {
    /// Segments `texts` and pads them to a bucket; `max_words` bounds the bucket plus the words
    /// to generate (the model's word-position table).
    pub fn new(texts: &[&str], canvas: usize, max_words: usize) -> Result<PromptBatch, ExampleError> {
        let rows: Vec<Vec<Vec<u8>>> = texts.iter().map(|t| segment(t, canvas)).collect();
        let n = rows.first().map_or(0, Vec::len);
        if n == 0 || rows.iter().any(|r| r.len() != n) {
            let counts: Vec<usize> = rows.iter().map(Vec::len).collect();
            return Err(ExampleError::Input(format!(
                "every prompt needs the same, non-zero number of words (got {counts:?})"
            )));
        }
        let w = bucket(n);
        if w > max_words {
            return Err(ExampleError::Input(format!(
                "{n} words need a bucket of {w} > {max_words} positions"
            )));
        }
        let (words, lengths) = to_tensors(&rows, w, canvas)?;
        Ok(PromptBatch {
            words,
            lengths,
            n_words: Tensor::scalar_i64(n as i64),
        })
    }
}

/// The words of row `row` of `words` [B, W, canvas] / `lengths` [B, W] as byte strings.
pub fn words_of(words: &Tensor, lengths: &Tensor, row: usize) -> Vec<Vec<u8>> {
    let (w, canvas) = (words.shape()[1], words.shape()[2]);
    let (units, lengths) = (words.to_i64_vec(), lengths.to_i64_vec());
    (0..w)
        .map(|i| {
            let n = lengths[row * w + i] as usize;
            units[(row * w + i) * canvas..][..n].iter().map(|&u| u as u8).collect()
        })
        .collect()
}

/// Words back to text, separated by spaces (the segmentation drops whitespace); bytes that are
/// not valid UTF-8 become U+FFFD.
pub fn detokenize(words: &[Vec<u8>]) -> String {
    words
        .iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
