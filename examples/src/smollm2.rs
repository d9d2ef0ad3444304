//! SmolLM2-135M-Instruct (`examples/smollm2/model.dsl`) on the weights of a llama.cpp GGUF file:
//! hyperparameters, weights (dequantised to f32 at load) and the byte-level BPE tokenizer all
//! come from the file; the host runs prefill and the decode loop with a growing KV cache.
//!
//! GGUF tensor names map to the model's (Hugging Face) names as follows, `N` the layer:
//!
//! | GGUF | model |
//! |---|---|
//! | `token_embd.weight` | `embed_tokens.weight` |
//! | `blk.N.attn_norm.weight` | `layers.N.input_layernorm.weight` |
//! | `blk.N.attn_q.weight`, `attn_k`, `attn_v`, `attn_output` | `layers.N.self_attn.q_proj.weight`, `k_proj`, `v_proj`, `o_proj` |
//! | `blk.N.ffn_norm.weight` | `layers.N.post_attention_layernorm.weight` |
//! | `blk.N.ffn_gate.weight`, `ffn_up`, `ffn_down` | `layers.N.mlp.gate_proj.weight`, `up_proj`, `down_proj` |
//! | `output_norm.weight` | `norm.weight` |
//! | `output.weight` (absent when tied) | `lm_head.weight` |
//!
//! llama.cpp's converter permutes the rows of `attn_q` and `attn_k` within each head so that its
//! RoPE rotates adjacent pairs; the model (like Hugging Face) rotates the two halves of a head,
//! so [`unpermute_rope_rows`] undoes that permutation at load.

use std::path::Path;

use mlc_runtime::{Data, GgufFile, QuantMatrix, Tensor, Weights};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

use crate::ExampleError;
use crate::engine::{Backend, Engine, compile};

/// The model in the language.
pub const MODEL_DSL: &str = include_str!("../smollm2/model.dsl");

/// The system prompt that SmolLM2's chat template inserts when the conversation has none.
pub const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

/// The hyperparameters a LLaMA GGUF file declares.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab: usize,
    pub d: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub n_layers: usize,
    pub ffn: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
    /// No `output.weight`: the output projection is the embedding table.
    pub tie_embeddings: bool,
}

impl LlamaConfig {
    /// Reads the `llama.*` keys of `file`.
    pub fn from_gguf(file: &GgufFile) -> Result<LlamaConfig, ExampleError> {
        let arch = file.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(ExampleError::Input(format!(
                "{}: architecture `{arch}`; this program runs `llama` models",
                file.path()
            )));
        }
        let vocab = match file.get_usize("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => file.get_str_array("tokenizer.ggml.tokens")?.len(),
        };
        Ok(LlamaConfig {
            vocab,
            d: file.get_usize("llama.embedding_length")?,
            heads: file.get_usize("llama.attention.head_count")?,
            kv_heads: file.get_usize("llama.attention.head_count_kv")?,
            n_layers: file.get_usize("llama.block_count")?,
            ffn: file.get_usize("llama.feed_forward_length")?,
            rope_base: file.get_f32("llama.rope.freq_base").unwrap_or(10000.0),
            rms_eps: file.get_f32("llama.attention.layer_norm_rms_epsilon")?,
            tie_embeddings: file.tensor_info("output.weight").is_none(),
        })
    }

    /// The hyperparameter overrides that make `model.dsl` this configuration.
    pub fn overrides(&self) -> Vec<(&'static str, String)> {
        vec![
            ("vocab", self.vocab.to_string()),
            ("d", self.d.to_string()),
            ("heads", self.heads.to_string()),
            ("kv_heads", self.kv_heads.to_string()),
            ("n_layers", self.n_layers.to_string()),
            ("ffn", self.ffn.to_string()),
            ("rope_base", format!("{:?}", f64::from(self.rope_base))),
            ("rms_eps", format!("{:?}", f64::from(self.rms_eps))),
            ("tie_embeddings", self.tie_embeddings.to_string()),
        ]
    }

    /// The size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d / self.heads
    }
}

/// The model's name for a GGUF tensor name, or `None` for tensors the model does not use.
pub fn model_name(gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("embed_tokens.weight"),
        "output_norm.weight" => Some("norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(n) = fixed {
        return Some(n.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    layer.parse::<usize>().ok()?;
    let inner = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("layers.{layer}.{inner}"))
}

/// llama.cpp's RoPE row permutation of a `[rows, cols]` q/k projection with `heads` heads, as
/// the GGUF row that each model row comes from: within each head, GGUF row `2 i + s` is model
/// row `s * dh / 2 + i` (s = 0, 1; i < dh / 2).
pub fn rope_row_order(rows: usize, heads: usize) -> Result<Vec<usize>, ExampleError> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return Err(ExampleError::Input(format!(
            "a q/k projection with {rows} rows does not split into {heads} heads of even size"
        )));
    }
    let dh = rows / heads;
    let half = dh / 2;
    let mut from = vec![0; rows];
    for h in 0..heads {
        for i in 0..half {
            for s in 0..2 {
                from[h * dh + s * half + i] = h * dh + 2 * i + s;
            }
        }
    }
    Ok(from)
}

/// Undoes llama.cpp's RoPE row permutation (see [`rope_row_order`]) of a `[heads * dh, cols]`
/// projection.
pub fn unpermute_rope_rows(t: &Tensor, heads: usize) -> Result<Tensor, ExampleError> {
    let (rows, cols) = match t.shape() {
        [r, c] => (*r, *c),
        s => {
            return Err(ExampleError::Input(format!(
                "a q/k projection of shape {s:?} is not 2-D"
            )));
        }
    };
    let order = rope_row_order(rows, heads)?;
    let src = t
        .as_f32()
        .ok_or_else(|| ExampleError::Input("a q/k projection is not f32".into()))?;
    let mut out = Vec::with_capacity(rows * cols);
    for from in order {
        out.extend_from_slice(&src[from * cols..(from + 1) * cols]);
    }
    Ok(Tensor::from_f32(&[rows, cols], out))
}

/// The heads of a q/k projection (whose rows the GGUF file permutes), `None` for other weights.
fn rope_heads(name: &str, config: &LlamaConfig) -> Option<usize> {
    if name.ends_with("q_proj.weight") {
        Some(config.heads)
    } else if name.ends_with("k_proj.weight") {
        Some(config.kv_heads)
    } else {
        None
    }
}

/// Every tensor of `file` the model uses, under the model's names, dequantised to f32 and with
/// the q/k rows un-permuted.
pub fn load_weights(file: &GgufFile, config: &LlamaConfig) -> Result<Vec<(String, Tensor)>, ExampleError> {
    let mut named = Vec::new();
    for info in file.tensors() {
        let Some(name) = model_name(info.name()) else {
            continue;
        };
        let t = file.tensor(info.name())?;
        let t = match rope_heads(&name, config) {
            Some(heads) => unpermute_rope_rows(&t, heads)?,
            None => t,
        };
        named.push((name, t));
    }
    Ok(named)
}

/// The matrices of `file` the model uses that are stored in `Q8_0` or `Q4_1` blocks, kept in
/// blocks (rows un-permuted like [`load_weights`]'s), under the model's names: what
/// [`Weights::attach_quantized`] takes.
pub fn load_quantized(file: &GgufFile, config: &LlamaConfig) -> Result<Vec<(String, QuantMatrix)>, ExampleError> {
    let mut named = Vec::new();
    for info in file.tensors() {
        let Some(name) = model_name(info.name()) else {
            continue;
        };
        let Some(q) = file.quantized(info.name())? else {
            continue;
        };
        let q = match rope_heads(&name, config) {
            Some(heads) => q.select_rows(&rope_row_order(q.rows(), heads)?),
            None => q,
        };
        named.push((name, q));
    }
    Ok(named)
}

/// The byte-level BPE tokenizer that `tokenizer.ggml.*` describes (`model = gpt2`): vocabulary,
/// merges, and the control tokens (`<|im_start|>` ...) as special tokens matched before BPE.
/// Pre-tokenization is SmolLM's (`pre = smollm`): digits split one by one, then GPT-2's
/// byte-level split.
pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<Tokenizer, ExampleError> {
    let model = file.get_str("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(ExampleError::Tokenizer(format!(
            "{}: tokenizer model `{model}`; this program reads byte-level BPE (`gpt2`) tokenizers",
            file.path()
        )));
    }
    let tokens = file.get_str_array("tokenizer.ggml.tokens")?;
    let types = file.get_i32_array("tokenizer.ggml.token_type")?;
    let merges = file.get_str_array("tokenizer.ggml.merges")?;
    let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| ExampleError::Tokenizer(format!("merge `{m}` is not two tokens")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| ExampleError::Tokenizer(e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ])));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    // Token type 3 is CONTROL in llama.cpp's vocabulary.
    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, ty)| **ty == 3)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(&specials);
    Ok(tok)
}

/// SmolLM2's chat template for one user message with the default system prompt, ready for the
/// assistant's answer (`add_generation_prompt`).
pub fn chat_prompt(user: &str) -> String {
    format!(
        "<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (ties to the lowest id).
    Greedy,
    /// Nucleus sampling: the smallest set of most likely tokens whose probability reaches `p`,
    /// renormalised, at `temperature`; draws from a seeded Philox stream.
    TopP { p: f32, temperature: f32, seed: u64 },
}

/// The loaded model: tokenizer, configuration, compiled engine.
pub struct SmolLm2 {
    pub tokenizer: Tokenizer,
    pub config: LlamaConfig,
    eos: u32,
    engine: Engine,
}

/// The keys and values of the positions seen so far, `[n_layers, 1, kv_heads, len, dh]` each,
/// and the buffers of the step before, which the next append fills (so that a decode step
/// reuses memory instead of asking the system for fresh pages every token).
#[derive(Default)]
struct KvCache {
    k: Vec<f32>,
    v: Vec<f32>,
    len: usize,
    spare_k: Vec<f32>,
    spare_v: Vec<f32>,
}

impl SmolLm2 {
    /// Reads `path` (a LLaMA GGUF file), dequantises its weights and compiles the model; the
    /// weights stored in blocks are kept in blocks too, for decoding (see
    /// [`SmolLm2::load_with`]).
    pub fn load(path: &Path, backend: Backend) -> Result<SmolLm2, ExampleError> {
        SmolLm2::load_with(path, backend, true)
    }

    /// As [`SmolLm2::load`]; with `keep_blocks` false, every product reads the dequantised
    /// `f32` weights.
    pub fn load_with(path: &Path, backend: Backend, keep_blocks: bool) -> Result<SmolLm2, ExampleError> {
        let file = GgufFile::open(path)?;
        let config = LlamaConfig::from_gguf(&file)?;
        let tokenizer = tokenizer_from_gguf(&file)?;
        let eos = file.get_u32("tokenizer.ggml.eos_token_id")?;
        let set = config.overrides();
        let mut model = compile("smollm2/model.dsl", MODEL_DSL, &set)?;
        let mut weights = Weights::from_tensors(model.module(), load_weights(&file, &config)?).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            ExampleError::Input(format!("{}: {}", file.path(), lines.join("; ")))
        })?;
        if keep_blocks {
            for (name, q) in load_quantized(&file, &config)? {
                weights
                    .attach_quantized(&name, q)
                    .map_err(|e| ExampleError::Input(format!("{}: {e}", file.path())))?;
            }
        }
        model.set_weights(weights);
        Ok(SmolLm2 {
            tokenizer,
            config,
            eos,
            engine: Engine::new(model, backend)?,
        })
    }

    /// The number of threads of the CPU backend.
    pub fn set_threads(&mut self, n: usize) {
        self.engine.set_threads(n);
    }

    /// The end-of-sequence token (`<|im_end|>` for the instruct model).
    pub fn eos(&self) -> u32 {
        self.eos
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) are matched.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ExampleError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ExampleError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ExampleError> {
        self.tokenizer
            .decode(ids, false)
            .map_err(|e| ExampleError::Tokenizer(e.to_string()))
    }

    /// Runs `tokens` after the cached positions, appends their keys/values to the cache and
    /// returns the logits of the last one.
    fn step(&mut self, tokens: &[u32], cache: &mut KvCache) -> Result<Vec<f32>, ExampleError> {
        let c = &self.config;
        let (layers, kvh, dh, n, p) = (c.n_layers, c.kv_heads, c.head_dim(), tokens.len(), cache.len);
        let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let past_shape = [layers, 1, kvh, p, dh];
        let inputs = [
            ("tokens".to_string(), Tensor::from_i64(&[1, n], ids)),
            // The cache moves into the inputs (no copy); the append below reads it back.
            (
                "past_k".to_string(),
                Tensor::from_f32(&past_shape, std::mem::take(&mut cache.k)),
            ),
            (
                "past_v".to_string(),
                Tensor::from_f32(&past_shape, std::mem::take(&mut cache.v)),
            ),
        ];
        let out = self.engine.run("step", &inputs)?;
        let get = |i: usize| {
            out.get(i)
                .and_then(|(_, t)| t.as_f32())
                .ok_or_else(|| ExampleError::Input(format!("`step` output {i} is missing or not f32")))
        };
        let (logits, new_k, new_v) = (get(0)?, get(1)?, get(2)?);
        // Append: per (layer, head) row, the p old positions then the n new ones, into the
        // spare buffers; the old cache becomes the next step's spare.
        let rows = layers * kvh;
        let append = |merged: &mut Vec<f32>, old: &[f32], new: &[f32]| {
            merged.clear();
            merged.reserve(rows * (p + n) * dh);
            for r in 0..rows {
                merged.extend_from_slice(&old[r * p * dh..(r + 1) * p * dh]);
                merged.extend_from_slice(&new[r * n * dh..(r + 1) * n * dh]);
            }
        };
        let past = |i: usize| inputs[i].1.as_f32().unwrap_or_default();
        append(&mut cache.spare_k, past(1), new_k);
        append(&mut cache.spare_v, past(2), new_v);
        let logits = logits.to_vec();
        let [_, (_, old_k), (_, old_v)] = inputs;
        let old = |t: Tensor| match t.into_data() {
            Data::F32(v) => v,
            _ => Vec::new(),
        };
        cache.k = std::mem::replace(&mut cache.spare_k, old(old_k));
        cache.v = std::mem::replace(&mut cache.spare_v, old(old_v));
        cache.len = p + n;
        Ok(logits)
    }

    /// Generates up to `max_new` tokens after `prompt` (ids), stopping after the end-of-sequence
    /// token. `on_token` sees each token as it is chosen, with the logits that chose it.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_new: usize,
        sampling: Sampling,
        mut on_token: impl FnMut(u32, &[f32]) -> Result<(), ExampleError>,
    ) -> Result<Vec<u32>, ExampleError> {
        if prompt.is_empty() {
            return Err(ExampleError::Input("the prompt has no tokens".into()));
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= self.config.vocab) {
            return Err(ExampleError::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                self.config.vocab
            )));
        }
        let mut cache = KvCache::default();
        let mut out = Vec::new();
        let mut logits = self.step(prompt, &mut cache)?;
        for i in 0..max_new {
            let next = choose(&logits, sampling, i as u64);
            on_token(next, &logits)?;
            out.push(next);
            if next == self.eos || i + 1 == max_new {
                break;
            }
            logits = self.step(&[next], &mut cache)?;
        }
        Ok(out)
    }
}

/// Picks the next token from `logits` (`draw` numbers the draws of one generation).
pub fn choose(logits: &[f32], sampling: Sampling, draw: u64) -> u32 {
    let argmax = || {
        let mut best = 0;
        for (i, &l) in logits.iter().enumerate() {
            if l > logits[best] {
                best = i;
            }
        }
        best as u32
    };
    match sampling {
        Sampling::Greedy => argmax(),
        Sampling::TopP { p, temperature, seed } => {
            if temperature <= 0.0 {
                return argmax();
            }
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut probs: Vec<(u32, f64)> = logits
                .iter()
                .enumerate()
                .map(|(i, &l)| (i as u32, f64::from((l - max) / temperature).exp()))
                .collect();
            let total: f64 = probs.iter().map(|x| x.1).sum();
            probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut kept = 0;
            let mut mass = 0.0;
            for (_, q) in &probs {
                kept += 1;
                mass += q / total;
                if mass >= f64::from(p) {
                    break;
                }
            }
            let nucleus = &probs[..kept];
            let nucleus_mass: f64 = nucleus.iter().map(|x| x.1).sum();
            let u = f64::from(mlc_kernels::philox::uniform_f32(seed, 0, draw)) * nucleus_mass;
            let mut acc = 0.0;
            for &(id, q) in nucleus {
                acc += q;
                if u < acc {
                    return id;
                }
            }
            nucleus[kept - 1].0
        }
    }
}

/// Turns generated tokens into text pieces as they come: decodes everything so far and returns
/// what is new, holding back a partial UTF-8 character (decoded as U+FFFD) until its last byte
/// arrives.
pub struct TextStream {
    tokenizer: Tokenizer,
    ids: Vec<u32>,
    shown: String,
}

impl TextStream {
    /// A stream decoding with `tokenizer`.
    pub fn new(tokenizer: Tokenizer) -> TextStream {
        TextStream {
            tokenizer,
            ids: Vec::new(),
            shown: String::new(),
        }
    }

    /// Adds `token`; returns the text it completes (possibly empty).
    pub fn push(&mut self, token: u32) -> Result<String, ExampleError> {
        self.ids.push(token);
        let text = self
            .tokenizer
            .decode(&self.ids, false)
            .map_err(|e| ExampleError::Tokenizer(e.to_string()))?;
        if text.ends_with('\u{FFFD}') || !text.starts_with(&self.shown) {
            return Ok(String::new());
        }
        let new = text[self.shown.len()..].to_string();
        self.shown = text;
        Ok(new)
    }
}
