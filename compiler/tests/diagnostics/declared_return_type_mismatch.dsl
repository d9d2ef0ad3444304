// expect: 3:34 output `x` has type f32[B, 4], which differs from the declared type
model M(d: int = 4) {
  entry forward(x: f32[B, d]) -> f32[B, 3] {
    return x
  }
}
