// expect: 5:22 index 3 is out of range for length 3
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let sizes = [1, 2, 3]
    return x * sizes[3]
  }
}
