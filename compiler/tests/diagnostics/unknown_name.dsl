// expect: 5:12 unknown name `hiden`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let hidden = x * 2.0
    return hiden + 1.0
  }
}
