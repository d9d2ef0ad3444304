// expect: 6:12 missing argument `c` of `add3`
fn add3(a, b, c) = a + b + c

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return add3(x, x)
  }
}
