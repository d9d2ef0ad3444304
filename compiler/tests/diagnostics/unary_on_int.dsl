// expect: 4:16 `exp` needs a float tensor, found i64[B, T]
model M(d: int = 4) {
  entry forward(ids: i64[B, T]) {
    return exp(ids)
  }
}
