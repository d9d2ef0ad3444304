// A fused elementwise chain: scale, add, ReLU, multiply, subtract, add on two inputs, one
// kernel. Bytes moved: 8 read + 4 written per element.
import std.math.{relu}

model Chain {
  entry forward(x: f32[N, D], y: f32[N, D]) -> f32[N, D] {
    let a = x * 1.5 + y
    let b = relu(a) * x - y * 0.25
    return b + 0.125
  }
}
