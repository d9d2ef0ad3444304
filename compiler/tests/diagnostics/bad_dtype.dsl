// expect: 4:21 expected a dtype such as f32, found the integer 3
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let y = cast(x, 3)
    return y
  }
}
