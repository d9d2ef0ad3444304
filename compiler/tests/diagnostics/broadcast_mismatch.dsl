// expect: 4:12 shape error in `add`: cannot broadcast f32[B, 4] with f32[B, 3]
model M(d: int = 4) {
  entry forward(x: f32[B, 4], y: f32[B, 3]) {
    return x + y
  }
}
