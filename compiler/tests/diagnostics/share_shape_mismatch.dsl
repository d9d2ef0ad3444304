// expect: 9:32 cannot share parameter `lower.weight` with `upper.weight`
block Lin(inp: int, out: int) {
  param weight: f32[out, inp]
  fn forward(x) = x @ transpose(weight)
}

model M(d: int = 4) {
  upper = Lin(d, d)
  lower = Lin(d, 2 * d) shares upper
  entry forward(x: f32[N, d]) {
    return lower(upper(x))
  }
}
