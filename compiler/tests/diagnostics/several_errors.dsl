// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x + missing_one
  }

  entry other(x: f32[B, d]) {
    return x * missing_two
  }
}
