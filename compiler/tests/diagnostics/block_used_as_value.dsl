// expect: 9:12 block `Lin` is used like a value
block Lin(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return Lin(x)
  }
}
