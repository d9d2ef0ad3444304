// Functions: short and block forms, defaults, keyword arguments, typed parameters that bind
// dims, several results.

/// The short form: `fn name(params) = expr`.
fn square(x) = x * x

/// Typed parameters: `x` must be an f32 tensor of rank 3; B, T and D bind to its dims and can
/// be used in the body. `eps` is converted to a float; `center` must be a bool.
fn normalize(x: f32[B, T, D], eps: float = 1e-5, center: bool = true) {
  let mu = if center { sum(x, axis = -1, keepdim = true) / D } else { 0.0 }
  let xc = x - mu
  return xc * rsqrt(mean(square(xc), axis = -1, keepdim = true) + eps)
}

/// Several results: returned as a tuple, unpacked by `let (a, b) = ...`.
fn split_half(x: f32[N, D]) {
  let h = D / 2
  return x[:, :h], x[:, h:]
}

/// Functions can take static values and compute at compile time.
fn fan_in_scale(n: int) = 1.0 / sqrt(float(n))

model Functions(d: int = 6) {
  entry forward(x: f32[B, T, d], m: f32[N, d]) {
    let y = normalize(x, center = false)        // keyword arguments, in any order
    let (left, right) = split_half(m)
    let (_, only_right) = split_half(m)         // `_` discards a result
    return y = y * fan_in_scale(d), left = left, right = right + only_right
  }
}
