// The functions of std.math.
import std.math

model MathDemo {
  entry forward(x: f32[B, V], a: f32[B, D], b: f32[B, D], mask: bool[B, V], step: i64[]) {
    let p = softmax(x)                             // along the last axis by default
    let lp = log_softmax(x, axis = -1)
    let z = logsumexp(x)                           // [B]
    let hidden = softmax(masked_fill(x, mask, -inf))   // masked entries get probability 0
    let acts = relu(x) + relu2(x) + gelu(x) + gelu_tanh(x) + silu(x)
    let spread = std(a, axis = -1) + var(a, axis = [0, 1])
    let cos = cosine_similarity(a, b)              // [B]
    let noise = randn(7, [B, D], offset = step)    // a fresh stream for every step
    let pick = sample_categorical(x, 7, step)      // i64 [B], drawn from softmax(x)
    return p, lp, z, hidden, acts, spread, cos, noise, pick
  }
}
