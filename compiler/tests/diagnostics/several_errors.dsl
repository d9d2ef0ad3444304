// expect: 4:16 unknown name `missing_one`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x + missing_one
  }

  entry other(x: f32[B, d]) {
    return x * missing_two
  }
}
// also: 8:16 unknown name `missing_two`
