// expect: 5:5 `next` outside a `loop` body
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    let h = x
    next h = h + 1.0
    return h
  }
}
