// expect: 10:21 block `Lin` has no member `weights`
block Lin(d: int) {
  param weight: f32[d, d]
  fn forward(x) = x @ weight
}

model M(d: int = 4) {
  proj = Lin(d)
  entry forward(x: f32[B, d]) {
    return x @ proj.weights
  }
}
