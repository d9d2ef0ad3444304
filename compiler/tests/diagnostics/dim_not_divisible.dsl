// expect: TODO
model M(heads: int = 3) {
  entry forward(x: f32[B, D]) {
    return reshape(x, [B, heads, D / heads])
  }
}
