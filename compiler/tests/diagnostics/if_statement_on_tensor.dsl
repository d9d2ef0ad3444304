// expect: 5:8 an `if` condition must be a static bool, found a tensor
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let y = x
    if any(x > 0.0) {
      let y = x * 2.0
    }
    return y
  }
}
