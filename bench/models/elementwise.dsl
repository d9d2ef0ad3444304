// A large elementwise kernel for thread scaling: `mlc bench bench/models/elementwise.dsl
// --bind N=4096,D=4096 --threads 1` vs `--threads 2`.
import std.math.{gelu}

model Elementwise {
  entry forward(x: f32[N, D]) -> f32[N, D] {
    return gelu(x) * 0.5 + x
  }
}
