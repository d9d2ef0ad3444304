// expect: 2:21 hyperparameter `factor` cannot be a tensor
block Scale(factor: f32[4]) {
  fn forward(x) = x * factor
}

model M(d: int = 4) {
  s = Scale(1.0)
  entry forward(x: f32[B, d]) {
    return s(x)
  }
}
