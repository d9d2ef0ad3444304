// Parameter sharing with `shares`: the sharing instance reuses the other's parameters.
import std.nn.{Linear}

block Layer(d: int) {
  fc = Linear(d, d)
  fn forward(x) = tanh(fc(x))
}

model Tied(d: int = 8) {
  encoder = Linear(d, d)
  decoder = Linear(d, d) shares encoder        // no decoder.* parameters: it uses encoder.*
  upper = repeat(4) Layer(d)
  lower = repeat(2) Layer(d) shares upper      // lower.0 = upper.0, lower.1 = upper.1

  entry forward(x: f32[B, d]) {
    return same = decoder(x) - encoder(x), deep = upper(x), shallow = lower(x)
  }
}
