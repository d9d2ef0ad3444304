// expect: 6:9 `return` inside a `for` loop
model M(d: int = 4, early: bool = true) {
  entry forward(x: f32[B, d]) {
    for i in 0..2 {
      if early {
        return x
      }
    }
    return x
  }
}
