// The model of `compiler/tests/aot.rs`: `mlc build --emit obj` compiles it to an object file
// that a C program links and runs.
import std.math.{softmax}

model Aot(d: int = 5) {
  param b: f32[d]
  param w: f32[d, d]

  // Kernels only: an elementwise chain with broadcasting ([B, d] with [d] and [B, 1]), a row
  // softmax, callouts (tanh, erf, exp) that the object imports from model.rt.c, and a column
  // softmax whose maxima and sums are temporaries (malloc in the C driver).
  entry forward(x: f32[B, d], s: f32[B, 1]) {
    let z = x * 2.0 + b
    let y = softmax(z * s)
    return y = y, t = tanh(z) + erf(z * 0.5) - exp(s), c = softmax(y * z, axis = 0)
  }

  // A matrix product: listed in the header as not available in the object yet.
  entry project(x: f32[B, d]) {
    return p = x @ w
  }
}
