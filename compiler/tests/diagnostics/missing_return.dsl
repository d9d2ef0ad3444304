// expect: 2:4 `double` ends without `return`
fn double(x) {
  let y = x * 2.0
}

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return double(x)
  }
}
