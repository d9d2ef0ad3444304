// expect: TODO
model M(d: int = 4) {
  entry forward(x) {
    return x
  }
}
