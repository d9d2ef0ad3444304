// Hyperparameters: typed, with defaults that may use earlier ones; block-level `let`
// constants; static arithmetic and static `if`.
import std.nn.{Linear}

block Head(d: int, heads: int = 4, kv_heads: int = heads, scale: float = 1.0, bias: bool = true) {
  let dh = d / heads                     // floor division of ints, at compile time
  let kv = kv_heads * dh
  let temperature = scale / sqrt(float(dh))
  proj = Linear(d, kv, has_bias = bias)

  fn forward(x) = proj(x) * temperature
}

model Hyper(d: int = 16, wide: bool = false) {
  let hidden = if wide { 4 * d } else { 2 * d }
  head = Head(d, kv_heads = 2)            // heads = 4 (default), kv_heads = 2
  mlp = Linear(d, hidden)

  entry forward(x: f32[B, d]) {
    return k = head(x), h = mlp(x)
  }
}
