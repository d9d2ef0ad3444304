// expect: 4:25 `sum` has no parameter `dim`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return sum(x, dim = 1)
  }
}
