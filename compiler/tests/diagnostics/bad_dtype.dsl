// expect: TODO
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let y = cast(x, 3)
    return y
  }
}
