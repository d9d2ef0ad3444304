// expect: 2:16 `Linear` is imported here but also defined in this file
import std.nn.{Linear}

block Linear(d: int) {
  param w: f32[d, d]
  fn forward(x) = x @ w
}

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
