// expect: TODO
model M(d: int = 4) {
  param b: f32[d] = zeros if d
  entry forward(x: f32[B, d]) {
    return x + b
  }
}
