// expect: 8:16 unknown name `z`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) {
      let z = h * 2.0
      next h = z
    }
    return h + z
  }
}
