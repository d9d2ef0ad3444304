// SmolLM2-135M-Instruct (Hugging Face, 2024): a LLaMA decoder with 30 layers, hidden size 576,
// 9 query heads and 3 key/value heads (grouped-query attention), SwiGLU FFN 1536, RMSNorm eps
// 1e-5, RoPE base 100000, vocabulary 49152 and tied embeddings (the output projection is the
// transposed embedding table).
//
// Parameter names are Hugging Face's `LlamaForCausalLM` names without the `model.` prefix
// (`layers.3.self_attn.q_proj.weight`); `smollm2-generate` reads them from the GGUF file, whose
// names it maps (`blk.3.attn_q.weight`), see README.md.
//
// Entry `step`: n new tokens at positions P .. P + n - 1 given the keys/values of the P earlier
// positions (P = 0 for the prompt: prefill), returning the logits of the last new position and
// the new positions' keys/values, which the caller appends to its cache. One entry serves
// prefill and every decode step; P and n are symbolic, so no length recompiles anything.
//
// Sizes: the defaults are the real model. A test-sized one: --set n_layers=2 --set vocab=256

import std.nn.{Embedding, RMSNorm, Linear}
import std.llama.{LlamaLayer}

model SmolLM2(
  vocab: int = 49152,
  d: int = 576,
  heads: int = 9,
  kv_heads: int = 3,
  n_layers: int = 30,
  ffn: int = 1536,
  rope_base: float = 100000.0,
  rms_eps: float = 1e-5,
  tie_embeddings: bool = true,
) {
  let dh = d / heads
  embed_tokens = Embedding(vocab, d)
  layers = repeat(n_layers) LlamaLayer(d, heads, kv_heads, ffn, rope_base, rms_eps)
  norm = RMSNorm(d, rms_eps)
  lm_head = Linear(d, vocab, has_bias = false) if !tie_embeddings

  /// tokens [B, n]; past_k, past_v [n_layers, B, kv_heads, P, dh] (keys after RoPE).
  /// Returns logits [B, vocab] of the last position and new_k, new_v [n_layers, B, kv_heads, n, dh].
  entry step(tokens: i64[B, n], past_k: f32[n_layers, B, kv_heads, P, dh], past_v: f32[n_layers, B, kv_heads, P, dh])
      -> (f32[B, vocab], f32[n_layers, B, kv_heads, n, dh], f32[n_layers, B, kv_heads, n, dh]) {
    let h = embed_tokens(tokens)
    let new_k = zeros([n_layers, B, kv_heads, n, dh])
    let new_v = new_k
    for j in 0..n_layers {
      let (h, k, v) = layers[j].attn_past(h, past_k[j], past_v[j])
      let h = layers[j].ffn_block(h)
      let new_k = dynamic_update_slice(new_k, k[None], j, axis = 0)
      let new_v = dynamic_update_slice(new_v, v[None], j, axis = 0)
    }
    let last = norm(h[:, -1])
    let logits = if tie_embeddings { last @ transpose(embed_tokens.weight) } else { lm_head(last) }
    return logits, new_k, new_v
  }
}
