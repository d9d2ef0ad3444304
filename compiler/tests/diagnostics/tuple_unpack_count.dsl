// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let (a, b, c) = topk(x, 2)
    return a
  }
}
