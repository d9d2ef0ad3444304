// expect: 4:12 type error in `add`: operand dtypes differ: f32[B, 4] and i64[B, 4]
model M(d: int = 4) {
  entry forward(x: f32[B, d], ids: i64[B, d]) {
    return x + ids
  }
}
