// Every construct of the language, once. Used by tests/parse.rs.
import std.nn
import std.nn.{Linear, LSTMCell,}
import "layers.dsl"
import "layers.dsl".{Block};

/* block comment
   over two lines */
fn gelu(x: f32) -> f32 = 0.5 * x * (1.0 + tanh(0.79788456 * (x + 0.044715 * x ** 3)))

fn split(x: f32[B, T, d * 4], n: int = 2, eps = 1e-5) -> (f32[B, T, d], f32[...], bool) {
  let (a, (b, _)) = (x[:, :, :d], (x[..., d:], None))
  let y = if n == 2 { a } else if n > 2 { b } else { -a }
  return a, rest = b, flag = !(n >= 2) & true | false;
}

block Mlp(d: int, hidden: int = d * 4, bias: bool = true) {
  up = Linear(d, hidden, bias = bias)
  down = Linear(hidden, d, bias = bias,)
  act = Gelu
  param scale: f32[d] = ones([d]) if bias
  param g: f32[]
  let dh = d / 2
  fn forward(x) = down(act(up(x))) * scale
}

model PtrNet(hidden: int = 128) {
  enc = LSTMCell(2, hidden)
  layers = repeat(4) Mlp(hidden) shares upper.layers if hidden > 64
  tied = Mlp(hidden) shares enc
  entry greedy(points: f32[B, N, 2], go: f32[2]) -> i64[B, N] {
    let (e, h0, c0) = enc.scan(points)
    for i in 0..3 {
      let e = layers[i](e)
    }
    loop step in 0..N max 64 carry (h = h0, c = c0, seen = zeros_bool[B, N],) until all(seen) {
      let (h, c) = enc(go, h, c)
      let u = where(seen, -inf, tanh(e @ h[:, None, :]) @ v)
      let j = argmax(u, axis = -1)
      next h = h, c = c, seen = scatter(seen, j, true)
      emit picks = j
    }
    loop k max 10 { next x = x % 2 }
    return (picks = picks, last = max(picks, axis=0))
  }
}
