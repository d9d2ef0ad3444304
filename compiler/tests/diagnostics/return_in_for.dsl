// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    for i in 0..2 {
      return x
    }
  }
}
