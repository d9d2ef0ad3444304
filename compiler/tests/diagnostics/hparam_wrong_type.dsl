// expect: 7:13 argument `factor` of block `Scale` is the bool true
block Scale(factor: float) {
  fn forward(x) = x * factor
}

model M(d: int = 4) {
  s = Scale(true)
  entry forward(x: f32[B, d]) {
    return s(x)
  }
}
