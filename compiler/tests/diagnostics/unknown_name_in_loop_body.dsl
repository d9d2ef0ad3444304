// expect: 5:20 unknown name `scal`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) {
      next h = h * scal
    }
    return h
  }
}
