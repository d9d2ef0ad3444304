// expect: 2:35 argument `hidden` of model `M` is the float 6.0
model M(d: int = 4, hidden: int = d * 1.5) {
  param w: f32[d, hidden]
  entry forward(x: f32[B, d]) {
    return x @ w
  }
}
