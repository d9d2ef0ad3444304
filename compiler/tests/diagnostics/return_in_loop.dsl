// expect: 6:7 `return` inside a `loop` body
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) {
      next h = h * 0.5
      return h
    }
  }
}
