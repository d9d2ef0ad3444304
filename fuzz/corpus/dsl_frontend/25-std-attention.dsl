// std.attention in a LLaMA-style decoder layer (rotary embeddings, grouped-query heads, causal
// mask, key padding) and a cross-attention over another sequence's states.
import std.attention
import std.nn.{Linear, RMSNorm, SwiGLU}

block DecoderLayer(d: int, heads: int, kv_heads: int) {
  let dh = d / heads
  attn_norm = RMSNorm(d)
  q_proj = Linear(d, d, has_bias = false)
  k_proj = Linear(d, kv_heads * dh, has_bias = false)
  v_proj = Linear(d, kv_heads * dh, has_bias = false)
  o_proj = Linear(d, d, has_bias = false)
  mlp_norm = RMSNorm(d)
  mlp = SwiGLU(d, 2 * d)

  fn forward(x, pos, real) {
    let h = attn_norm(x)
    let q = rope(split_heads(q_proj(h), heads), pos)      // [B, heads, T, dh]
    let k = rope(split_heads(k_proj(h), kv_heads), pos)   // [B, kv_heads, T, dh]
    let v = split_heads(v_proj(h), kv_heads)
    let a = attention(q, k, v, causal = true, key_padding = real)
    let x = x + o_proj(merge_heads(a))
    return x + mlp(mlp_norm(x))
  }
}

model AttentionDemo(d: int = 16, heads: int = 4) {
  layers = repeat(2) DecoderLayer(d, heads, 2)
  cross = MultiHeadAttention(d, heads, kv_heads = 2)

  entry forward(x: f32[B, T, d], real: bool[B, T], memory: f32[B, S, d]) {
    let pos = arange(T)                                   // positions 0 .. T - 1
    let h = x
    for i in 0..len(layers) {
      let h = layers[i](h, pos, real)
    }
    let (k, v) = cross.project_kv(memory)                 // keys/values of another sequence
    let mixed = h + cross.attend(h, k, v)
    let self_attended = cross(h, causal = true)           // the block's own self-attention
    let bias = where(causal_mask(T, S), 0.0, -1e9)        // a float mask is added to the scores
    let scores = attention(split_heads(h, heads), split_heads(memory, heads),
                           split_heads(memory, heads), mask = bias, scale = 0.1)
    return mixed, self_attended, scores
  }
}
