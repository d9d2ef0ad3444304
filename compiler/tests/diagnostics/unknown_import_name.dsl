// expect: TODO
import std.nn.{Linaer}

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
