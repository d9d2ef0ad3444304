// expect: 4:5 `y = ...` needs `let`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    y = x * 2.0
    return y
  }
}
