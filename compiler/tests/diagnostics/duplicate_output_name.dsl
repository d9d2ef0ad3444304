// expect: 4:23 two outputs are named `y`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return y = x, y = x * 2.0
  }
}
