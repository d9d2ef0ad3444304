// expect: 4:7 `w` is already defined in block `M`
model M(d: int = 4) {
  param w: f32[d, d]
  let w = d * 2
  entry forward(x: f32[B, d]) {
    return x @ w
  }
}
