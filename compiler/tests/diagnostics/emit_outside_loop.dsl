// expect: 4:5 `emit` outside a `loop` body
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    emit trace = x
    return x
  }
}
