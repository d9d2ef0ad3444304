// expect: 2:12 unknown standard library module `std.layers`
import std.layers

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
