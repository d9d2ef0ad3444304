//! all-MiniLM-L6-v2 (`examples/minilm/model.dsl`) on its real weights: the package's
//! `tokenizer.json` through the `tokenizers` crate, `model.safetensors` bound by name (the DSL
//! uses Hugging Face's parameter names, so the mapping is the identity; the file's
//! `embeddings.position_ids` and `pooler.*` tensors are not parameters and stay unused).

use std::path::Path;

use mlc_runtime::{Tensor, safetensors_io};
use tokenizers::{Tokenizer, TruncationParams};

use crate::ExampleError;
use crate::engine::{Backend, Engine, compile};

/// The model in the language.
pub const MODEL_DSL: &str = include_str!("../minilm/model.dsl");

/// Longest input in tokens, [CLS] and [SEP] included: sentence-transformers' `max_seq_length`
/// for this model (longer sentences are truncated, as the pipeline does).
pub const MAX_TOKENS: usize = 256;

/// The embedding size.
pub const DIM: usize = 384;

/// The sentence encoder: tokenizer plus compiled model.
pub struct MiniLm {
    tokenizer: Tokenizer,
    engine: Engine,
}

/// One batch's outputs.
pub struct Encoded {
    /// [B, T, 384], rows padded to the batch's longest sentence (padded positions are
    /// meaningless).
    pub last_hidden_state: Tensor,
    /// [B, 384], unit length.
    pub sentence_embedding: Tensor,
}

impl MiniLm {
    /// Loads the tokenizer and weights from the package folder `dir` and compiles the model for
    /// `backend`.
    pub fn load(dir: &Path, backend: Backend) -> Result<MiniLm, ExampleError> {
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| ExampleError::Tokenizer(format!("{}: {e}", tok_path.display())))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| ExampleError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        let mut model = compile("minilm/model.dsl", MODEL_DSL, &[])?;
        model.bind_weights(&safetensors_io::load(dir.join("model.safetensors"))?)?;
        Ok(MiniLm {
            tokenizer,
            engine: Engine::new(model, backend)?,
        })
    }

    /// The number of threads of the CPU backend.
    pub fn set_threads(&mut self, n: usize) {
        self.engine.set_threads(n);
    }

    /// Token ids of each sentence, with [CLS] and [SEP], truncated to [`MAX_TOKENS`].
    pub fn tokenize(&self, sentences: &[&str]) -> Result<Vec<Vec<i64>>, ExampleError> {
        let encodings = self
            .tokenizer
            .encode_batch(sentences.to_vec(), true)
            .map_err(|e| ExampleError::Tokenizer(e.to_string()))?;
        Ok(encodings
            .iter()
            .map(|e| e.get_ids().iter().map(|&i| i64::from(i)).collect())
            .collect())
    }

    /// Runs one batch of tokenized sentences, padded to the longest with [PAD] (id 0) and
    /// attention mask 0.
    pub fn encode(&mut self, ids: &[Vec<i64>]) -> Result<Encoded, ExampleError> {
        let b = ids.len();
        let t = ids.iter().map(Vec::len).max().unwrap_or(0);
        if b == 0 || t == 0 {
            return Err(ExampleError::Input("an empty batch has nothing to encode".into()));
        }
        let mut flat_ids = vec![0i64; b * t];
        let mut mask = vec![0i64; b * t];
        for (row, seq) in ids.iter().enumerate() {
            flat_ids[row * t..row * t + seq.len()].copy_from_slice(seq);
            mask[row * t..row * t + seq.len()].fill(1);
        }
        let inputs = [
            ("input_ids".to_string(), Tensor::from_i64(&[b, t], flat_ids)),
            ("attention_mask".to_string(), Tensor::from_i64(&[b, t], mask)),
        ];
        let mut out = self.engine.run("encode", &inputs)?.into_iter().map(|(_, t)| t);
        match (out.next(), out.next()) {
            (Some(last_hidden_state), Some(sentence_embedding)) => Ok(Encoded {
                last_hidden_state,
                sentence_embedding,
            }),
            _ => Err(ExampleError::Input("`encode` returned fewer than two outputs".into())),
        }
    }

    /// The unit-length embedding of each sentence, in the order given. Like sentence-transformers,
    /// the sentences are tokenized first and run in batches of at most `batch` sentences of
    /// similar length (sorted by token count), so little of each batch is padding.
    pub fn embed(&mut self, sentences: &[&str], batch: usize) -> Result<Vec<Vec<f32>>, ExampleError> {
        let ids = self.tokenize(sentences)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut result = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(batch.max(1)) {
            let rows: Vec<Vec<i64>> = chunk.iter().map(|&i| ids[i].clone()).collect();
            let enc = self.encode(&rows)?;
            let values = enc
                .sentence_embedding
                .as_f32()
                .ok_or_else(|| ExampleError::Input("the embedding is not f32".into()))?;
            for (&i, v) in chunk.iter().zip(values.chunks(DIM)) {
                result[i] = v.to_vec();
            }
        }
        Ok(result)
    }
}
