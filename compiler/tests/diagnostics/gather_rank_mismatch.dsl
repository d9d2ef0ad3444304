// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d], idx: i64[B]) {
    return gather(x, idx, axis = 1)
  }
}
