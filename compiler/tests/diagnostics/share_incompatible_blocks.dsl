// expect: 14:23 cannot share parameters between block `B` and block `A`
block A(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

block B(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  upper = A(d)
  lower = B(d) shares upper
  entry forward(x: f32[N, d]) {
    return lower(upper(x))
  }
}
