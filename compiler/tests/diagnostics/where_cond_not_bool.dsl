// expect: 4:18 the condition of `where` must be a bool tensor, found f32[B, 4]
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return where(x, x, 0.0)
  }
}
