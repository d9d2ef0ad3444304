// Stacks of layers: `repeat(n) Block(...)`, indexing, prefixes, length and chaining.
import std.nn.{Linear}

block Layer(d: int) {
  fc = Linear(d, d)
  fn forward(x) = x + tanh(fc(x))
}

model Stack(d: int = 8, depth: int = 4) {
  layers = repeat(depth) Layer(d)          // parameters layers.0.fc.weight, layers.1..., ...

  entry forward(x: f32[B, d]) {
    let all = layers(x)                    // forward through every layer in order
    let first_two = layers[:2](x)          // a prefix is a stack too
    let last = layers[len(layers) - 1](x)  // one layer
    let h = x
    for i in 0..depth {                    // the same as layers(x), written out
      let h = layers[i](h)
    }
    return all, first_two, last, h
  }
}
