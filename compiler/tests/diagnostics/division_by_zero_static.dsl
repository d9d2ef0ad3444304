// expect: 3:12 division by zero
model M(d: int = 4, heads: int = 0) {
  let dh = d / heads
  entry forward(x: f32[B, d]) {
    return x
  }
}
