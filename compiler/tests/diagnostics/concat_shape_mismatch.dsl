// expect: 4:12 shape error in `concat`: operands disagree outside axis 1:
model M(d: int = 4) {
  entry forward(x: f32[B, 4], y: f32[B, 3, 2]) {
    return concat([x, y], axis = -1)
  }
}
