// Sub-blocks, methods and conditional members.
import std.nn.{Linear, LayerNorm}

block Residual(d: int, norm: bool = true) {
  ln = LayerNorm(d) if norm          // None when norm is false
  fc = Linear(d, d)

  fn forward(x) = x + fc(self_norm(x))
  fn self_norm(x) = if norm { ln(x) } else { x }
  fn gain(x, factor: float = 2.0) = fc(x) * factor
}

model Subs(d: int = 8) {
  first = Residual(d)
  second = Residual(d, norm = false)
  entry forward(x: f32[B, d]) {
    let h = second(first(x))             // `inst(x)` calls forward
    let g = first.gain(h, factor = 0.5)  // `inst.method(...)` calls any method
    let w = first.fc.weight              // members are reachable by path
    return y = g, w = w
  }
}
