// expect: 6:17 argument `x` of `norm` has type f32[B, 4], but it is declared with rank 3
fn norm(x: f32[B, T, D]) = x / sum(x, axis = -1, keepdim = true)

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return norm(x)
  }
}
