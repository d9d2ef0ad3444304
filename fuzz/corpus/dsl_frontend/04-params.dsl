// Parameters: dtype, static shape, initialiser, optional condition.
block Affine(d: int, has_shift: bool = true) {
  param scale: f32[d] = ones                 // init: ones
  param shift: f32[d] = zeros if has_shift   // absent (None) when has_shift is false
  param proj: f32[d, d] = normal(0.02)       // the default initialiser
  param gate: f32[] = fill(0.5)              // a scalar parameter
  param noise: f32[d] = uniform(0.1)         // uniform in [-0.1, 0.1)

  fn forward(x) {
    let y = (x @ proj) * scale * gate + noise
    return if shift == None { y } else { y + shift }
  }
}

model Params(d: int = 4) {
  a = Affine(d)
  b = Affine(d, has_shift = false)
  entry forward(x: f32[B, d]) {
    return y = b(a(x))
  }
}
