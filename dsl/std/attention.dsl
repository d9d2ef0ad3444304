// std.attention: scaled dot-product attention with causal, boolean, additive and key-padding
// masks, grouped-query heads, rotary position embeddings, and a multi-head attention block.
//
// Shapes: B batch, H query heads, Hkv key/value heads, Tq/Tk query/key lengths, dh head size.
//
//   import std.attention.{attention, rope, MultiHeadAttention}

import std.math.{softmax}
import std.nn.{Linear}

// ---------------------------------------------------------------- heads

/// [B, T, heads * dh] -> [B, heads, T, dh]: split the last axis into heads, heads before time.
fn split_heads(x, heads: int) {
  let (b, t, n) = shape(x)
  return permute(reshape(x, [b, t, heads, n / heads]), [0, 2, 1, 3])
}

/// [B, H, T, dh] -> [B, T, H * dh], the inverse of `split_heads`.
fn merge_heads(x) {
  let (b, h, t, dh) = shape(x)
  return reshape(permute(x, [0, 2, 1, 3]), [b, t, h * dh])
}

/// Repeats each key/value head `n` times: [B, Hkv, T, dh] -> [B, Hkv * n, T, dh], head j of the
/// result being head j / n of the input (HF's `repeat_kv`, for grouped-query attention).
fn repeat_kv(x, n: int) {
  let (b, hkv, t, dh) = shape(x)
  return if n == 1 { x } else { reshape(expand(x[:, :, None], [b, hkv, n, t, dh]), [b, hkv * n, t, dh]) }
}

/// The causal mask: bool [tq, tk], true where query i may attend key j, i.e. j <= i + (tk - tq)
/// (the last query is aligned with the last key, as with a KV cache). tq, tk: ints or dims.
fn causal_mask(tq, tk) = iota([tq, tk], 1) + tq <= iota([tq, tk], 0) + tk

// ---------------------------------------------------------------- attention

/// softmax(q @ k^T * scale + masks) @ v.
///   q: [B, H, Tq, dh]; k, v: [B, Hkv, Tk, dh] with Hkv dividing H (grouped-query attention:
///   query head i uses key/value head i / (H / Hkv)).
///   causal: keys after the query's aligned position are hidden (see `causal_mask`).
///   mask: bool (true = may attend) or float (added to the scores), broadcastable to
///   [B, H, Tq, Tk]; key_padding: bool [B, Tk], true for real keys. scale defaults to 1/sqrt(dh).
/// Returns [B, H, Tq, dh]. A query row whose keys are all hidden gets weights 0 and thus an
/// output of 0 (not NaN).
fn attention(q, k, v, causal: bool = false, mask = None, key_padding = None, scale = None) {
  let group = dim(q, 1) / dim(k, 1)
  let k = repeat_kv(k, group)
  let v = repeat_kv(v, group)
  let scale = if scale == None { 1.0 / sqrt(float(dim(q, -1))) } else { scale }
  let s = (q @ transpose(k)) * scale                          // [B, H, Tq, Tk]
  let s = if causal { where(causal_mask(dim(q, 2), dim(k, 2)), s, -inf) } else { s }
  let s = if mask == None { s } else {
    if dtype(mask) == bool { where(mask, s, -inf) } else { s + mask }
  }
  let s = if key_padding == None { s } else { where(key_padding[:, None, None, :], s, -inf) }
  return softmax(s, axis = -1) @ v
}

/// Rotary position embedding in the rotate-half convention of HF LLaMA:
///   x * cos(pos * inv_freq) + rotate_half(x) * sin(pos * inv_freq), inv_freq[i] = base^(-2i/dh)
/// with the frequencies repeated over both halves and rotate_half(x) = concat([-x2, x1]).
/// x: [B, H, T, dh] (dh even); pos: integer [T] or [B, T]. Same shape and dtype as x.
fn rope(x, pos, base: float = 10000.0) {
  let dh = dim(x, -1)
  let half = dh / 2
  let inv_freq = 1.0 / pow(base, arange(half, dtype = f32) * 2.0 / dh)      // [dh/2]
  let freqs = cast(pos, f32)[..., None] * inv_freq                         // [..., T, dh/2]
  let emb = concat([freqs, freqs], axis = -1)                              // [..., T, dh]
  let c = cast(cos(emb), dtype(x))
  let s = cast(sin(emb), dtype(x))
  let c = if rank(pos) == 2 { c[:, None] } else { c }                      // [B, 1, T, dh]
  let s = if rank(pos) == 2 { s[:, None] } else { s }
  let rotated = concat([-x[..., half:], x[..., :half]], axis = -1)
  return x * c + rotated * s
}

// ---------------------------------------------------------------- the block

/// Multi-head attention with optional grouped-query heads (kv_heads < heads) and biases.
/// Parameters: q_proj [d, d], k_proj and v_proj [kv_heads * dh, d], o_proj [d, d] (Linears;
/// with biases when `has_bias`), dh = d / heads.
block MultiHeadAttention(d: int, heads: int, kv_heads: int = heads, has_bias: bool = false) {
  let dh = d / heads
  q_proj = Linear(d, d, has_bias)
  k_proj = Linear(d, kv_heads * dh, has_bias)
  v_proj = Linear(d, kv_heads * dh, has_bias)
  o_proj = Linear(d, d, has_bias)

  /// Self-attention: x [B, T, d] -> [B, T, d]; masks as in `attention`.
  fn forward(x, causal: bool = false, mask = None, key_padding = None) {
    let q = split_heads(q_proj(x), heads)
    let (k, v) = project_kv(x)
    return o_proj(merge_heads(attention(q, k, v, causal = causal, mask = mask, key_padding = key_padding)))
  }

  /// Attention of the queries of x [B, Tq, d] over keys and values already projected and split,
  /// k, v [B, kv_heads, Tk, dh] (cross-attention, injected states, KV caches) -> [B, Tq, d].
  fn attend(x, k, v, mask = None, key_padding = None) {
    let q = split_heads(q_proj(x), heads)
    return o_proj(merge_heads(attention(q, k, v, mask = mask, key_padding = key_padding)))
  }

  /// Keys and values of src [B, Tk, d], split into heads: (k, v), each [B, kv_heads, Tk, dh].
  fn project_kv(src) = (split_heads(k_proj(src), kv_heads), split_heads(v_proj(src), kv_heads))
}
