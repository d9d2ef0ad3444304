// A complete model: a two-layer perceptron over the last axis of its input.
import std.nn.{Linear}
import std.math.{gelu}

model Mlp(d: int = 8, hidden: int = 32) {
  up = Linear(d, hidden)
  down = Linear(hidden, d)

  entry forward(x: f32[B, T, d]) -> f32[B, T, d] {
    let h = gelu(up(x))
    return down(h)
  }
}
