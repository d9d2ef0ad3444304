// expect: 5:12 shape error in `matmul`: inner dimensions differ: f32[B, 4] @ f32[3, 5]
model M(d: int = 4) {
  param w: f32[3, 5]
  entry forward(x: f32[B, d]) {
    return x @ w
  }
}
