// expect: 3:24 bad parameter initialiser
model M(d: int = 4) {
  param w: f32[d, d] = gaussian(0.02)
  entry forward(x: f32[B, d]) {
    return x @ w
  }
}
