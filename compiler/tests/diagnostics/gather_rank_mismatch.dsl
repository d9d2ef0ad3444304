// expect: 4:12 shape error in `gather`: indices i64[B] must match f32[B, 4] on
model M(d: int = 4) {
  entry forward(x: f32[B, d], idx: i64[B]) {
    return gather(x, idx, axis = 1)
  }
}
