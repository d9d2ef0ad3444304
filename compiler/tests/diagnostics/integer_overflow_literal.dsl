// expect: 4:16 integer literal `99999999999999999999` is too large
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x * 99999999999999999999
  }
}
