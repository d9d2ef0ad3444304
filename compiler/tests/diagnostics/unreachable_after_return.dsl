// expect: 5:5 unreachable statement after `return`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
    let y = x + 1.0
  }
}
