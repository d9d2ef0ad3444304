// expect: 4:26 axis 2 is out of range for a tensor of rank 2
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return sum(x, axis = 2)
  }
}
