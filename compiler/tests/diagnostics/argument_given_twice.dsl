// expect: 6:30 parameter `f` of `scale` is given twice
fn scale(x, f) = x * f

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return scale(x, 2.0, f = 3.0)
  }
}
