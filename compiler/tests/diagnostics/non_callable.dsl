// expect: 4:12 the integer 4 is not callable
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return d(x)
  }
}
