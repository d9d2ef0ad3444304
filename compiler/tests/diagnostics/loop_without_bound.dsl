// expect: 4:10 loop without a bound
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i carry (h = x) {
      next h = h * 0.5
    }
    return h
  }
}
