// TEMPORARY stand-in for std.attention (dsl/std/attention.dsl is still a placeholder).
// Same names and signatures as the agreed std API; delete this file and `import std.attention`
// once the standard library has it.

import std.math.{softmax}
import std.nn.{Linear}

/// [B, T, H*dh] -> [B, H, T, dh]
fn split_heads(x, heads: int) {
  let (b, t, dd) = shape(x)
  return permute(reshape(x, [b, t, heads, dd / heads]), [0, 2, 1, 3])
}

/// [B, H, T, dh] -> [B, T, H*dh]
fn merge_heads(x) {
  let (b, h, t, dh) = shape(x)
  return reshape(permute(x, [0, 2, 1, 3]), [b, t, h * dh])
}

/// Scaled dot-product attention. q [B, H, Tq, dh], k/v [B, Hkv, Tk, dh] (Hkv divides H).
/// mask: bool (true = may attend) or float (added), broadcastable to [B, H, Tq, Tk];
/// key_padding: bool [B, Tk] (true = real key). causal with Tq != Tk aligns the last query
/// with the last key.
fn attention(q, k, v, causal: bool = false, mask = None, key_padding = None, scale = None) {
  let (b, h, tq, dh) = shape(q)
  let hkv = dim(k, 1)
  let tk = dim(k, 2)
  let k = if hkv == h { k } else { reshape(expand(k[:, :, None], [b, hkv, h / hkv, tk, dh]), [b, h, tk, dh]) }
  let v = if hkv == h { v } else { reshape(expand(v[:, :, None], [b, hkv, h / hkv, tk, dh]), [b, h, tk, dh]) }
  let s = if scale == None { 1.0 / sqrt(float(dh)) } else { scale }
  let scores = (q @ transpose(k)) * s
  let scores = if causal {
    where(iota([tq, tk], 1) <= iota([tq, tk], 0) + (tk - tq), scores, -inf)
  } else { scores }
  let scores = if mask == None { scores } else {
    if dtype(mask) == bool { where(mask, scores, -inf) } else { scores + mask }
  }
  let scores = if key_padding == None { scores } else { where(key_padding[:, None, None, :], scores, -inf) }
  return softmax(scores, axis = -1) @ v
}

/// Rotary position embedding, rotate-half convention (HF LLaMA).
/// x [B, H, T, dh]; pos i64 [T] or [B, T].
fn rope(x, pos, base: float = 10000.0) {
  let dh = dim(x, -1)
  let half = dh / 2
  let inv_freq = exp(arange(half, dtype = f32) * (-2.0 * log(base) / float(dh)))
  let ang = cast(pos, f32)[..., None] * inv_freq
  let ang = if rank(pos) == 2 { ang[:, None] } else { ang }
  let ang = concat([ang, ang], axis = -1)
  let rot = concat([-x[..., half:], x[..., :half]], axis = -1)
  return x * cos(ang) + rot * sin(ang)
}

block MultiHeadAttention(d: int, heads: int, kv_heads: int = heads, has_bias: bool = false) {
  let dh = d / heads
  q_proj = Linear(d, heads * dh, has_bias)
  k_proj = Linear(d, kv_heads * dh, has_bias)
  v_proj = Linear(d, kv_heads * dh, has_bias)
  o_proj = Linear(heads * dh, d, has_bias)

  fn forward(x, causal: bool = false, mask = None, key_padding = None) {
    let q = split_heads(q_proj(x), heads)
    let (k, v) = project_kv(x)
    return o_proj(merge_heads(attention(q, k, v, causal = causal, mask = mask, key_padding = key_padding)))
  }

  fn attend(x, k, v, mask = None, key_padding = None) {
    let q = split_heads(q_proj(x), heads)
    return o_proj(merge_heads(attention(q, k, v, mask = mask, key_padding = key_padding)))
  }

  fn project_kv(src) {
    return split_heads(k_proj(src), kv_heads), split_heads(v_proj(src), kv_heads)
  }
}
