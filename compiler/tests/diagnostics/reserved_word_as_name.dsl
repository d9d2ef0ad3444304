// expect: 4:9 `loop` is a reserved word and cannot be a name
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let loop = x * 2.0
    return loop
  }
}
