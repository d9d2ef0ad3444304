// expect: 10:12 output `proj` of entry `forward` is a block instance
block Lin(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  proj = Lin(d)
  entry forward(x: f32[B, d]) {
    return proj
  }
}
