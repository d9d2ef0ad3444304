// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, T, d]) {
    return permute(x, [0, 1, 1])
  }
}
