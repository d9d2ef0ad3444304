// expect: 5:7 `return` inside a `for` loop
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    for i in 0..2 {
      return x
    }
  }
}
