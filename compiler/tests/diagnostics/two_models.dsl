// expect: TODO
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
