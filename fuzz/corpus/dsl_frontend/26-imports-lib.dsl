// A library file: blocks and functions, no model. `26-imports.dsl` imports it.
import std.nn.{Linear}
import std.math.{silu}

/// A residual feed-forward layer.
block Residual(d: int) {
  fc = Linear(d, d)
  fn forward(x) = x + silu(fc(x))
}

/// Mean over the time axis, ignoring padded positions. x: [B, T, D], real: bool [B, T] -> [B, D].
fn masked_mean(x, real) {
  let w = cast(real, f32)[:, :, None]
  return sum(x * w, axis = 1) / maximum(sum(w, axis = 1), 1.0)
}
