// expect: 4:15 an `if` condition must be a static bool, found a tensor
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return if sum(x) > 0.0 { x } else { -x }
  }
}
