// expect: 4:12 shape error in `reshape`: cannot reshape f32[2, 6] to [5, 3]:
model M(d: int = 4) {
  entry forward(x: f32[2, 6]) {
    return reshape(x, [5, 3])
  }
}
