// A heavier fused elementwise chain: three maximum/minimum among ten ops, one kernel.
// Bytes moved: 8 read + 4 written per element.
import std.math.{relu}

model ChainMinMax {
  entry forward(x: f32[N, D], y: f32[N, D]) -> f32[N, D] {
    let a = x * 1.5 + y
    let b = relu(a) * x - y * 0.25
    let c = maximum(b, -1.0) + minimum(a, 1.0) * 0.5
    return c * 0.75 - x * 0.125
  }
}
