// expect: 2:14 calls nest deeper than 200 levels in `down`
fn down(x) = down(x * 0.5)

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return down(x)
  }
}
