// expect: 8:25 `shares` names `upper`, which is not a sub-block defined before it
block Lin(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  lower = Lin(d) shares upper
  upper = Lin(d)
  entry forward(x: f32[B, d]) {
    return lower(upper(x))
  }
}
