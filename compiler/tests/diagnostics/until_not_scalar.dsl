// expect: 4:40 `until` needs a bool scalar, found bool[B, 4]
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) until h > 1.0 {
      next h = h * 2.0
    }
    return h
  }
}
