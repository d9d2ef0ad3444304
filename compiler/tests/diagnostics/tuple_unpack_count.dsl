// expect: 4:9 cannot unpack 2 values into 3 names
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let (a, b, c) = topk(x, 2)
    return a
  }
}
