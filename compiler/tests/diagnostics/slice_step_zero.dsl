// expect: 4:19 a slice step must be a positive static integer, found the integer 0
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x[:, ::0]
  }
}
