// expect: 4:34 `h` is carried twice
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x, h = x * 2.0) {
      next h = h * 0.5
    }
    return h
  }
}
