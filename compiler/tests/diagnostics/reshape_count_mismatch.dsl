// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[2, 6]) {
    return reshape(x, [5, 3])
  }
}
