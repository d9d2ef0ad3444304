// std.llama: the LLaMA decoder layer (RMSNorm, rotary positions, grouped-query attention,
// SwiGLU) with Hugging Face parameter names, so a `LlamaForCausalLM` state dict binds by name
// (`layers.3.self_attn.q_proj.weight`). Used by the SmolLM2 and SharedLLM examples.
//
//   import std.llama.{LlamaLayer}

import std.nn.{RMSNorm, SwiGLU}
import std.attention.{MultiHeadAttention, attention, split_heads, merge_heads, rope}

/// A LLaMA decoder layer: input_layernorm, self_attn (q/k/v/o_proj, no bias; `kv_heads`
/// key/value heads), post_attention_layernorm, mlp (SwiGLU). The attention half and the FFN half
/// are separate methods so that a model can place a module between them (SharedLLM's
/// self-injection).
/// Shapes: x [B, T, d]; keys/values [B, kv_heads, T, dh] with dh = d / heads.
block LlamaLayer(d: int, heads: int, kv_heads: int, ffn: int, rope_base: float, eps: float) {
  input_layernorm = RMSNorm(d, eps)
  self_attn = MultiHeadAttention(d, heads, kv_heads)
  post_attention_layernorm = RMSNorm(d, eps)
  mlp = SwiGLU(d, ffn)

  /// Queries of h at positions pos, and its keys (rotated) and values.
  fn qkv(h, pos) {
    let q = rope(split_heads(self_attn.q_proj(h), heads), pos, rope_base)
    let (k, v) = self_attn.project_kv(h)
    return q, rope(k, pos, rope_base), v
  }

  /// Causal self-attention half over the whole sequence: x [B, T, d], pos i64 [T].
  /// Returns (x + attn, k, v), k (rotated) and v [B, kv_heads, T, dh].
  fn attn_block(x, pos) {
    let (q, k, v) = qkv(input_layernorm(x), pos)
    return x + self_attn.o_proj(merge_heads(attention(q, k, v, causal = true))), k, v
  }

  /// The same after `past` cached positions: x [B, n, d] are positions P .. P + n - 1, past_k,
  /// past_v [B, kv_heads, P, dh] the keys/values of positions 0 .. P - 1 (P may be 0).
  /// Returns (x + attn, k, v) with k, v [B, kv_heads, n, dh] of the new positions only.
  fn attn_past(x, past_k, past_v) {
    let p = dim(past_k, 2)
    let (q, k, v) = qkv(input_layernorm(x), arange(dim(x, 1)) + p)
    let all_k = concat([past_k, k], axis = 2)
    let all_v = concat([past_v, v], axis = 2)
    return x + self_attn.o_proj(merge_heads(attention(q, all_k, all_v, causal = true))), k, v
  }

  /// The same with a preallocated KV cache: x [B, n, d] are positions start .. start + n - 1;
  /// k_cache, v_cache [B, kv_heads, max_len, dh]; query i sees cache slots j <= start + i.
  /// Returns (x + attn, k_cache, v_cache) with the new keys/values written at `start`.
  fn attn_step(x, k_cache, v_cache, start) {
    let n = dim(x, 1)
    let (q, k, v) = qkv(input_layernorm(x), arange(n) + start)
    let k_cache = dynamic_update_slice(k_cache, k, start, axis = 2)
    let v_cache = dynamic_update_slice(v_cache, v, start, axis = 2)
    let max_len = dim(k_cache, 2)
    let visible = iota([n, max_len], 1) <= iota([n, max_len], 0) + start
    return x + self_attn.o_proj(merge_heads(attention(q, k_cache, v_cache, mask = visible))), k_cache, v_cache
  }

  /// The FFN half with its residual.
  fn ffn_block(x) = x + mlp(post_attention_layernorm(x))

  fn forward(x, pos) {
    let (h, _, _) = attn_block(x, pos)
    return ffn_block(h)
  }
}
