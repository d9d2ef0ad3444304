// std.nn: the common layers. Parameter names and layouts follow PyTorch, so a PyTorch state dict
// loads by name (`layers.0.fc1.weight`); initialisers follow PyTorch's default distributions.
//
//   import std.nn.{Linear, LayerNorm}

import std.math.{silu, gelu, gelu_tanh}

// ---------------------------------------------------------------- linear maps

/// y = x @ weight^T + bias, like torch.nn.Linear.
/// weight: [out, inp], bias: [out] (absent when `has_bias` is false).
/// forward: x [..., inp] -> [..., out].
block Linear(inp: int, out: int, has_bias: bool = true) {
  param weight: f32[out, inp] = uniform(1.0 / sqrt(float(inp)))
  param bias: f32[out] = uniform(1.0 / sqrt(float(inp))) if has_bias

  fn forward(x) {
    let y = x @ transpose(weight)
    return if has_bias { y + bias } else { y }
  }
}

/// A lookup table of `n` vectors of size `d`, like torch.nn.Embedding. weight: [n, d].
/// forward: integer ids of any shape [...] -> [..., d].
block Embedding(n: int, d: int) {
  param weight: f32[n, d] = normal(1.0)

  fn forward(ids) = take(weight, ids, axis = 0)
}

// ---------------------------------------------------------------- normalisation

/// Layer normalisation over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, with
/// the biased variance (divided by n), like torch.nn.functional.layer_norm.
/// x: [..., d]; weight, bias: [d] or None (skipped). Same shape as x.
fn layer_norm(x, weight, bias, eps: float = 1e-5) {
  let mu = mean(x, axis = -1, keepdim = true)
  let xc = x - mu
  let v = mean(xc * xc, axis = -1, keepdim = true)
  let y = xc * rsqrt(v + eps)
  let y = if weight == None { y } else { y * weight }
  return if bias == None { y } else { y + bias }
}

/// RMS normalisation over the last axis: x / sqrt(mean(x^2) + eps) * weight (LLaMA's RMSNorm).
/// x: [..., d]; weight: [d] or None. Same shape as x.
fn rms_norm(x, weight, eps: float = 1e-6) {
  let y = x * rsqrt(mean(x * x, axis = -1, keepdim = true) + eps)
  return if weight == None { y } else { y * weight }
}

/// torch.nn.LayerNorm(d, eps): weight [d] (init ones), bias [d] (init zeros).
/// forward: x [..., d] -> [..., d].
block LayerNorm(d: int, eps: float = 1e-5) {
  param weight: f32[d] = ones
  param bias: f32[d] = zeros

  fn forward(x) = layer_norm(x, weight, bias, eps)
}

/// RMSNorm(d, eps) as in LLaMA: weight [d] (init ones). forward: x [..., d] -> [..., d].
block RMSNorm(d: int, eps: float = 1e-6) {
  param weight: f32[d] = ones

  fn forward(x) = rms_norm(x, weight, eps)
}

// ---------------------------------------------------------------- feed-forward blocks

/// The transformer MLP fc2(gelu(fc1(x))): fc1 = Linear(d, hidden), fc2 = Linear(hidden, d), both
/// with bias; exact GELU, or its tanh approximation when `tanh_approx` (GPT-2).
/// forward: x [..., d] -> [..., d].
block GeluMLP(d: int, hidden: int, tanh_approx: bool = false) {
  fc1 = Linear(d, hidden)
  fc2 = Linear(hidden, d)

  fn forward(x) {
    let h = fc1(x)
    let h = if tanh_approx { gelu_tanh(h) } else { gelu(h) }
    return fc2(h)
  }
}

/// The gated MLP of LLaMA: down_proj(silu(gate_proj(x)) * up_proj(x)), three Linears without
/// bias: gate_proj, up_proj [hidden, d], down_proj [d, hidden].
/// forward: x [..., d] -> [..., d].
block SwiGLU(d: int, hidden: int) {
  gate_proj = Linear(d, hidden, has_bias = false)
  up_proj = Linear(d, hidden, has_bias = false)
  down_proj = Linear(hidden, d, has_bias = false)

  fn forward(x) = down_proj(silu(gate_proj(x)) * up_proj(x))
}

// ---------------------------------------------------------------- recurrent cells

/// One step of torch.nn.LSTMCell. Parameters (PyTorch names; the rows of the 4*hidden axis are
/// the gates in the order i, f, g, o): weight_ih [4*hidden, inp], weight_hh [4*hidden, hidden],
/// bias_ih [4*hidden], bias_hh [4*hidden].
///   gates = x @ weight_ih^T + bias_ih + h @ weight_hh^T + bias_hh
///   c2 = sigmoid(f) * c + sigmoid(i) * tanh(g);  h2 = sigmoid(o) * tanh(c2)
/// forward: x [..., inp], h [..., hidden], c [..., hidden] -> (h2, c2), both [..., hidden].
block LSTMCell(inp: int, hidden: int) {
  param weight_ih: f32[4 * hidden, inp] = uniform(1.0 / sqrt(float(hidden)))
  param weight_hh: f32[4 * hidden, hidden] = uniform(1.0 / sqrt(float(hidden)))
  param bias_ih: f32[4 * hidden] = uniform(1.0 / sqrt(float(hidden)))
  param bias_hh: f32[4 * hidden] = uniform(1.0 / sqrt(float(hidden)))

  fn forward(x, h, c) {
    let gates = x @ transpose(weight_ih) + bias_ih + h @ transpose(weight_hh) + bias_hh
    let i = sigmoid(gates[..., 0:hidden])
    let f = sigmoid(gates[..., hidden:2 * hidden])
    let g = tanh(gates[..., 2 * hidden:3 * hidden])
    let o = sigmoid(gates[..., 3 * hidden:])
    let c2 = f * c + i * g
    return o * tanh(c2), c2
  }
}

// ---------------------------------------------------------------- diffusion timesteps

/// Sinusoidal timestep embedding as in DiT / guided diffusion: with half = dim / 2 and
/// freqs[j] = exp(-ln(max_period) * j / half), returns concat([cos(t * freqs), sin(t * freqs)])
/// (a zero column appended when `dim` is odd).
/// t: [B] (any numeric dtype, cast to f32) -> f32 [B, dim].
fn timestep_embedding(t, dim: int, max_period: float = 10000.0) {
  let half = dim / 2
  let freqs = exp(-log(max_period) * arange(half, dtype = f32) / half)
  let args = cast(t, f32)[:, None] * freqs[None, :]
  let emb = concat([cos(args), sin(args)], axis = -1)
  return if dim % 2 == 1 { pad(emb, -1, 0, 1) } else { emb }
}

/// DiT's TimestepEmbedder: linear2(silu(linear1(timestep_embedding(t, freq_dim)))) with
/// linear1 = Linear(freq_dim, d) (weight [d, freq_dim]) and linear2 = Linear(d, d).
/// forward: t [B] -> [B, d].
block TimestepEmbedder(d: int, freq_dim: int = 256) {
  linear1 = Linear(freq_dim, d)
  linear2 = Linear(d, d)

  fn forward(t) = linear2(silu(linear1(timestep_embedding(t, freq_dim))))
}
