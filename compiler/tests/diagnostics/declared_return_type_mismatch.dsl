// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d]) -> f32[B, 3] {
    return x
  }
}
