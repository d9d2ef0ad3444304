// expect: 3:15 integer overflow in a value computed at compile time
model M(d: int = 4, bits: int = 100) {
  let scale = 2 ** bits
  entry forward(x: f32[B, d]) {
    return x * scale
  }
}
