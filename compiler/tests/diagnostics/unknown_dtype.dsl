// expect: TODO
model M(d: int = 4) {
  entry forward(x: f64[B, d]) {
    return x
  }
}
