// expect: 4:12 shape error in `permute`: [0, 1, 1] is not a permutation of the
model M(d: int = 4) {
  entry forward(x: f32[B, T, d]) {
    return permute(x, [0, 1, 1])
  }
}
