// Imports: whole standard-library modules, chosen names, and other files (relative paths).
import std.math                              // every item of std.math
import std.nn.{Linear, LayerNorm}            // only these names
import "26-imports-lib.dsl".{Residual}       // a block from a file next to this one
import "26-imports-lib.dsl"                  // or every item of it (imported once either way)

model Pooler(d: int = 8, classes: int = 3) {
  body = Residual(d)
  norm = LayerNorm(d)
  out = Linear(d, classes)

  entry forward(x: f32[B, T, d], real: bool[B, T]) {
    let pooled = masked_mean(norm(body(x)), real)
    return probs = softmax(out(pooled))
  }
}
