// expect: 6:26 too many arguments for `scale`
fn scale(x, f) = x * f

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return scale(x, 2.0, 3.0)
  }
}
