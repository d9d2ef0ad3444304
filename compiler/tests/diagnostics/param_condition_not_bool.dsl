// expect: 3:30 a condition must be a static bool, found the integer 4
model M(d: int = 4) {
  param b: f32[d] = zeros if d
  entry forward(x: f32[B, d]) {
    return x + b
  }
}
