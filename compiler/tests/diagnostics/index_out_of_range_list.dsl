// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let sizes = [1, 2, 3]
    return x * sizes[3]
  }
}
