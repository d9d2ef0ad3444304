// expect: 9:35 cannot share 3 layers with a stack of 2
block Lin(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  upper = repeat(2) Lin(d)
  lower = repeat(3) Lin(d) shares upper
  entry forward(x: f32[B, d]) {
    return lower(upper(x))
  }
}
