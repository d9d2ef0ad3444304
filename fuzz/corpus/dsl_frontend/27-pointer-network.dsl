// A pointer network (Vinyals et al. 2015) with greedy decoding: an LSTM encoder over the input
// points, then a decoder that points at one not-yet-chosen input at each step.
import std.nn.{Linear, LSTMCell}

model PtrNet(hidden: int = 16) {
  enc = LSTMCell(2, hidden)
  dec = LSTMCell(2, hidden)
  w1 = Linear(hidden, hidden, has_bias = false)
  w2 = Linear(hidden, hidden, has_bias = false)
  param v: f32[hidden]
  param go: f32[2] = zeros

  entry greedy(points: f32[B, N, 2]) -> i64[B, N] {
    // Encoder: one LSTM step per point, keeping every state.
    loop i in 0..N max 4096 carry (h = zeros([B, hidden]), c = zeros([B, hidden])) {
      let x = points[:, i]                                 // [B, 2]: the i-th point of each row
      let (h2, c2) = enc(x, h, c)
      next h = h2, c = c2
      emit states = h2                                     // [N, B, hidden]
    }
    let e1 = w1(permute(states, [1, 0, 2]))                // [B, N, hidden], once, outside the loop
    // Decoder: attend over the encoder states, never choosing a point twice.
    loop step in 0..N max 4096
      carry (hd = h, cd = c, x = expand(go, [B, 2]), seen = zeros([B, N], bool)) {
      let (h2, c2) = dec(x, hd, cd)
      let u = tanh(e1 + w2(h2)[:, None, :]) @ v            // [B, N] scores
      let j = argmax(where(seen, -inf, u), axis = -1)      // i64 [B]
      let x2 = gather(points, expand(j[:, None, None], [B, 1, 2]), 1)[:, 0]   // points[b, j[b]]
      next hd = h2, cd = c2, x = x2, seen = scatter(seen, j[:, None], true, 1)
      emit picks = j
    }
    return picks = transpose(picks, 0, 1)                  // [B, N]
  }
}
