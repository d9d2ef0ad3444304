// expect: 4:12 too many indices: 3 for a tensor of rank 2 (f32[B, 4])
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x[0, 1, 2]
  }
}
