// expect: 4:5 unterminated comment `/*`
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    /* the rest of this file is a comment
    return x
  }
}
