// expect: TODO
fn norm(x: f32[B, T, D]) = x / sum(x, axis = -1, keepdim = true)

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return norm(x)
  }
}
