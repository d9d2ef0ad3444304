// expect: 8:7 a second model `Second` in one file
model First(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}

model Second(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
