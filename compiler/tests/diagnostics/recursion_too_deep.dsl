// expect: TODO
fn down(x) = down(x * 0.5)

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return down(x)
  }
}
