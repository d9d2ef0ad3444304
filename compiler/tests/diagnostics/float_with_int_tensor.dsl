// expect: TODO
model M(d: int = 4) {
  entry forward(ids: i64[B, T]) {
    return ids * 0.5
  }
}
