// expect: 4:12 unknown name `softmax`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return softmax(x, axis = -1)
  }
}
