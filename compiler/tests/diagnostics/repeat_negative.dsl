// expect: 8:19 `repeat` needs a static non-negative count, found the integer -1
block Lin(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4, n: int = -1) {
  layers = repeat(n) Lin(d)
  entry forward(x: f32[B, d]) {
    return layers(x)
  }
}
