// expect: 3:11 shape error in `matmul`: inner dimensions differ: f32[B, 4] @ f32[3, 3]
fn project(x, w) {
  let y = x @ w
  return y
}

model M(d: int = 4) {
  param w: f32[3, 3]
  entry forward(x: f32[B, d]) {
    return project(x, w)
  }
}
