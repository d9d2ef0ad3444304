// expect: 3:27 a dimension must be a non-negative integer or a name, found the
model M(d: int = 4) {
  entry forward(x: f32[B, -2]) {
    return x
  }
}
