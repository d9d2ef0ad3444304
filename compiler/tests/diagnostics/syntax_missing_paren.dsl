// expect: 5:5 unexpected `return`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let y = exp(x
    return y
  }
}
