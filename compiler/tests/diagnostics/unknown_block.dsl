// expect: 3:10 unknown block `Linear`
model M(d: int = 4) {
  proj = Linear(d, d)
  entry forward(x: f32[B, d]) {
    return proj(x)
  }
}
