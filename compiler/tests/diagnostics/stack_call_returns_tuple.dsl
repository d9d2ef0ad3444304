// expect: 12:12 calling a stack chains `forward`, which must return one value here
block Pair(d: int) {
  param w: f32[d, d]
  fn forward(x) {
    return x @ w, x
  }
}

model M(d: int = 4) {
  layers = repeat(2) Pair(d)
  entry forward(x: f32[B, d]) {
    return layers(x)
  }
}
