// std.math: activations, normalised exponentials, statistics and random sampling, written with
// the built-in primitives. Every function here works on tensors of any shape and any float dtype
// (the result has the input's dtype) unless its comment says otherwise.
//
//   import std.math                       // everything
//   import std.math.{softmax, gelu}       // chosen names

// ---------------------------------------------------------------- normalised exponentials

/// Softmax along `axis`: exp(x - m) / sum(exp(x - m)) with m the maximum along `axis`, so large
/// logits do not overflow. Same shape as `x`.
/// A slice that is entirely -inf (a fully masked row) gives zeros rather than NaN.
fn softmax(x, axis: int = -1) {
  let m = max(x, axis = axis, keepdim = true)
  let m = where(m > -inf, m, 0)          // an all -inf slice: exp(-inf - 0) = 0, not NaN
  let z = exp(x - m)
  let s = sum(z, axis = axis, keepdim = true)
  return z / where(s > 0, s, 1)          // s >= 1 whenever the slice has a finite entry
}

/// Log-softmax along `axis`: x - m - log(sum(exp(x - m))). Same shape as `x`.
/// A slice that is entirely -inf gives -inf everywhere (log of zero probabilities), not NaN.
fn log_softmax(x, axis: int = -1) {
  let m = max(x, axis = axis, keepdim = true)
  let m = where(m > -inf, m, 0)
  let s = sum(exp(x - m), axis = axis, keepdim = true)
  return x - m - log(where(s > 0, s, 1))
}

/// log(sum(exp(x))) along `axis`, computed as m + log(sum(exp(x - m))). The axis is removed
/// unless `keepdim`. An all -inf slice gives -inf.
fn logsumexp(x, axis: int = -1, keepdim: bool = false) {
  let m = max(x, axis = axis, keepdim = true)
  let m = where(m > -inf, m, 0)
  let r = m + log(sum(exp(x - m), axis = axis, keepdim = true))
  return if keepdim { r } else { squeeze(r, axis) }
}

// ---------------------------------------------------------------- activations

/// max(x, 0), elementwise (float or integer tensors).
fn relu(x) = maximum(x, 0)

/// Squared ReLU, relu(x)^2 (Primer, "So et al. 2021").
fn relu2(x) {
  let r = maximum(x, 0)
  return r * r
}

/// GELU, exact form: 0.5 * x * (1 + erf(x / sqrt(2))) (PyTorch `gelu(x)`).
fn gelu(x) = x * 0.5 * (1.0 + erf(x * 0.7071067811865476))

/// GELU, tanh approximation: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
/// (PyTorch `gelu(x, approximate="tanh")`, GPT-2's "gelu_new").
fn gelu_tanh(x) {
  let inner = 0.7978845608028654 * (x + 0.044715 * x * x * x)
  return 0.5 * x * (1.0 + tanh(inner))
}

/// SiLU (swish): x * sigmoid(x).
fn silu(x) = x * sigmoid(x)

/// `value` where `mask` is true, `x` elsewhere. `mask` is bool and broadcasts with `x`;
/// `value` is a number or a tensor of x's dtype. Result: the broadcast shape.
fn masked_fill(x, mask, value) = where(mask, value, x)

// ---------------------------------------------------------------- statistics

/// Population variance along `axis` (an int or a list of ints): mean((x - mean(x))^2), i.e.
/// divided by n like numpy and like LayerNorm (torch.var divides by n - 1 by default).
/// The axes are removed unless `keepdim`.
fn var(x, axis = -1, keepdim: bool = false) {
  let xc = x - mean(x, axis = axis, keepdim = true)
  return mean(xc * xc, axis = axis, keepdim = keepdim)
}

/// Population standard deviation along `axis`: sqrt(var(x, axis)).
fn std(x, axis = -1, keepdim: bool = false) = sqrt(var(x, axis, keepdim))

/// Cosine similarity along `axis`: sum(a * b) / (max(|a|, eps) * max(|b|, eps)), with |.| the
/// Euclidean norm (PyTorch's `cosine_similarity`). `a` and `b` broadcast; the axis is removed.
fn cosine_similarity(a, b, axis: int = -1, eps: float = 1e-8) {
  let na = maximum(sqrt(sum(a * a, axis = axis, keepdim = true)), eps)
  let nb = maximum(sqrt(sum(b * b, axis = axis, keepdim = true)), eps)
  return sum((a / na) * (b / nb), axis = axis)
}

// ---------------------------------------------------------------- random numbers

/// Standard normal f32 samples of the given `shape` (a list of ints and dims), by Box-Muller:
/// sqrt(-2 ln u1) * cos(2 pi u2) with u1, u2 = u[..., 0], u[..., 1] of
/// u = rand(seed, shape + [2], offset), i.e. the uniforms 2i and 2i + 1 of the stream (u1 clamped
/// to at least 2^-24). `seed` and `offset` are i64 scalars (numbers or tensors); a different
/// `offset` gives an independent stream, so pass the loop index as the offset to get fresh noise
/// in every iteration.
fn randn(seed, shape, offset = 0) {
  let u = rand(seed, shape + [2], offset)
  let u1 = maximum(u[..., 0], 5.960464477539063e-08)   // 2^-24: ln stays finite
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u[..., 1])
}

/// One sample per row from the categorical distribution softmax(logits) over the last axis, by
/// the Gumbel-max trick: argmax(logits + g) with g = -log(-log(u)), u = rand(seed, shape(logits),
/// offset). logits: [..., V] (any float dtype; -inf entries are never drawn) -> i64 [...].
fn sample_categorical(logits, seed, offset = 0) {
  let u = maximum(rand(seed, shape(logits), offset), 5.960464477539063e-08)
  let g = -log(-log(u))
  return argmax(cast(logits, f32) + g, axis = -1)
}

/// One sample per row by nucleus (top-p) sampling (Holtzman et al. 2020): the smallest set of
/// most likely tokens whose probability reaches `p` (always at least the most likely one), drawn
/// from softmax(logits / temperature) restricted to that set, by `sample_categorical`.
/// logits: [..., V] (V static) -> i64 [...], indices into the last axis.
fn sample_top_p(logits, p: float, seed, offset = 0, temperature: float = 1.0) {
  let v = dim(logits, -1)
  let probs = softmax(cast(logits, f32) / temperature)
  let (sorted, order) = topk(probs, v)                           // most likely first
  let before = cumsum(sorted, -1, exclusive = true)              // mass of the better tokens
  let kept = where(before < p, log(sorted), -inf)
  let pick = sample_categorical(kept, seed, offset)              // a rank in `order`
  return gather(order, pick[..., None], axis = -1)[..., 0]
}
