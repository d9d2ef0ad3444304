// expect: 4:12 missing argument `b` of `where`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return where(x > 0.0, x)
  }
}
