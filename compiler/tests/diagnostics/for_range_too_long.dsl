// expect: 4:14 a `for` loop of 18446744073709551614 iterations is too long to unroll
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    for i in -9223372036854775807..9223372036854775807 {
      let x = x + 1.0
    }
    return x
  }
}
