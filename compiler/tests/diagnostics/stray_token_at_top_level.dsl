// expect: 2:1 unexpected `let`
let width = 4

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
