// expect: 6:1 unexpected end of file
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
