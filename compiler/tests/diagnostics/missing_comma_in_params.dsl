// expect: 2:20 unexpected `depth`
model M(d: int = 4 depth: int = 2) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
