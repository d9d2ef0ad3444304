// expect: 4:34 cannot divide the dimension D by 3 exactly
model M(heads: int = 3) {
  entry forward(x: f32[B, D]) {
    return reshape(x, [B, heads, D / heads])
  }
}
