// expect: 4:15 the range has 100 iterations, more than `max 10`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..100 max 10 carry (h = x) {
      next h = h * 0.5
    }
    return h
  }
}
