// all-MiniLM-L6-v2: the sentence-transformers encoder (Wang et al. 2020, MiniLM; Reimers &
// Gurevych 2019, Sentence-BERT), a 6-layer BERT with hidden size 384, 12 heads, FFN 1536, exact
// (erf) GELU and post-norm LayerNorms with eps 1e-12.
//
// Parameter names are Hugging Face's `BertModel` names (`encoder.layer.3.attention.self.query.weight`),
// so the package's `model.safetensors` binds by name. Two tensors of that file are not
// parameters: `embeddings.position_ids` (the constant 0..511) and, where present, the unused
// `pooler.*` head.
//
// Entry `encode`: token ids and their attention mask (1 = token, 0 = padding) -> the last hidden
// state and the sentence embedding, the attention-mask-weighted mean of the last hidden state,
// L2-normalised (sentence-transformers' Pooling(mean) + Normalize).
//
// Sizes: the defaults are the real model. A test-sized one: --set d=32 --set heads=4 --set ffn=64 --set vocab=100

import std.math.{gelu}
import std.nn.{Linear, Embedding, layer_norm}
import std.attention.{split_heads, merge_heads, attention}

/// torch.nn.LayerNorm under BERT's name for it.
block Norm(d: int, eps: float) {
  param weight: f32[d] = ones
  param bias: f32[d] = zeros

  fn forward(x) = layer_norm(x, weight, bias, eps)
}

/// Word + position + token-type embeddings, then LayerNorm. ids [B, T] -> [B, T, d].
/// Every token has type 0 (single sentences).
block BertEmbeddings(vocab: int, d: int, max_pos: int, type_vocab: int, eps: float) {
  word_embeddings = Embedding(vocab, d)
  position_embeddings = Embedding(max_pos, d)
  token_type_embeddings = Embedding(type_vocab, d)
  LayerNorm = Norm(d, eps)

  fn forward(ids) {
    let t = dim(ids, 1)
    let x = word_embeddings(ids) + position_embeddings(arange(t)) + token_type_embeddings.weight[0]
    return LayerNorm(x)
  }
}

/// Multi-head self-attention with biased projections; padded keys are hidden.
/// x [B, T, d], key_padding bool [B, T] (true = real token) -> [B, T, d] (before the output dense).
block BertSelfAttention(d: int, heads: int) {
  query = Linear(d, d)
  key = Linear(d, d)
  value = Linear(d, d)

  fn forward(x, key_padding) {
    let q = split_heads(query(x), heads)
    let k = split_heads(key(x), heads)
    let v = split_heads(value(x), heads)
    return merge_heads(attention(q, k, v, key_padding = key_padding))
  }
}

/// dense, then LayerNorm of the residual sum: the output half of BERT's attention and FFN.
block BertResidualOutput(inp: int, d: int, eps: float) {
  dense = Linear(inp, d)
  LayerNorm = Norm(d, eps)

  fn forward(h, residual) = LayerNorm(dense(h) + residual)
}

block BertAttention(d: int, heads: int, eps: float) {
  self = BertSelfAttention(d, heads)
  output = BertResidualOutput(d, d, eps)

  fn forward(x, key_padding) = output(self(x, key_padding), x)
}

block BertIntermediate(d: int, ffn: int) {
  dense = Linear(d, ffn)

  fn forward(x) = gelu(dense(x))
}

/// One post-norm encoder layer. x [B, T, d] -> [B, T, d].
block BertLayer(d: int, heads: int, ffn: int, eps: float) {
  attention = BertAttention(d, heads, eps)
  intermediate = BertIntermediate(d, ffn)
  output = BertResidualOutput(ffn, d, eps)

  fn forward(x, key_padding) {
    let a = attention(x, key_padding)
    return output(intermediate(a), a)
  }
}

block BertEncoder(n_layers: int, d: int, heads: int, ffn: int, eps: float) {
  layer = repeat(n_layers) BertLayer(d, heads, ffn, eps)

  fn forward(x, key_padding) {
    for i in 0..n_layers {
      let x = layer[i](x, key_padding)
    }
    return x
  }
}

model MiniLM(
  vocab: int = 30522,
  d: int = 384,
  heads: int = 12,
  n_layers: int = 6,
  ffn: int = 1536,
  max_pos: int = 512,
  type_vocab: int = 2,
  eps: float = 1e-12,
) {
  embeddings = BertEmbeddings(vocab, d, max_pos, type_vocab, eps)
  encoder = BertEncoder(n_layers, d, heads, ffn, eps)

  /// input_ids, attention_mask: [B, T] (T at most max_pos; rows padded at the end with mask 0).
  /// Returns the last hidden state [B, T, d] and the sentence embedding [B, d].
  entry encode(input_ids: i64[B, T], attention_mask: i64[B, T]) -> (f32[B, T, d], f32[B, d]) {
    let real = attention_mask != 0
    let h = encoder(embeddings(input_ids), real)
    let m = cast(attention_mask, f32)[:, :, None]
    let pooled = sum(h * m, axis = 1) / maximum(sum(m, axis = 1), 1e-9)
    let norm = sqrt(sum(pooled * pooled, axis = -1, keepdim = true))
    let last_hidden_state = h
    let sentence_embedding = pooled / maximum(norm, 1e-12)
    return last_hidden_state, sentence_embedding
  }
}
