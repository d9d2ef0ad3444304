// expect: 7:12 `trace` is emitted twice
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) {
      next h = h * 0.5
      emit trace = h
      emit trace = h + 1.0
    }
    return trace
  }
}
