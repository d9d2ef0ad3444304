// expect: 3:20 unknown type `f64`
model M(d: int = 4) {
  entry forward(x: f64[B, d]) {
    return x
  }
}
