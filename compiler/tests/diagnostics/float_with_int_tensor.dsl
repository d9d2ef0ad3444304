// expect: 4:12 cannot use the float 0.5 with a tensor of dtype i64
model M(d: int = 4) {
  entry forward(ids: i64[B, T]) {
    return ids * 0.5
  }
}
