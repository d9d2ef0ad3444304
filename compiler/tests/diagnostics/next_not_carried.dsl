// expect: 5:12 `g` is not carried by this loop
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) {
      next g = h * 0.5
    }
    return h
  }
}
