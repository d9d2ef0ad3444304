// expect: 10:17 block `Lin` has no member `backward`
block Lin(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  proj = Lin(d)
  entry forward(x: f32[B, d]) {
    return proj.backward(x)
  }
}
