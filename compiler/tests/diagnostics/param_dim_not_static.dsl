// expect: TODO
model M(d: int = 4) {
  param w: f32[d, 2.5]
  entry forward(x: f32[B, d]) {
    return x @ w
  }
}
