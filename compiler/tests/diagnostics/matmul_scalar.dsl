// expect: 4:12 `@` needs tensors of rank >= 1, got f32[] @ f32[B, 4]
model M(d: int = 4) {
  entry forward(x: f32[B, d], s: f32[]) {
    return s @ x
  }
}
