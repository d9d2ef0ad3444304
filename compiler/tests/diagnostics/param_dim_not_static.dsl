// expect: 3:19 a parameter dimension must be a static non-negative integer,
model M(d: int = 4) {
  param w: f32[d, 2.5]
  entry forward(x: f32[B, d]) {
    return x @ w
  }
}
