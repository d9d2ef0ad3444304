// expect: 3:17 entry input `x` needs a tensor type with a shape
model M(d: int = 4) {
  entry forward(x) {
    return x
  }
}
