// Run-time loops: a bounded range, carried state, `next`, `emit`.
import std.nn.{Linear}

model Rnn(d: int = 4) {
  cell = Linear(2 * d, d)

  // Runs over the time axis of xs: T is symbolic, so `max` bounds it (checked at run time).
  entry scan(xs: f32[B, T, d], h0: f32[B, d]) {
    loop t in 0..T max 512 carry (h = h0) {
      let x = xs[:, t]                                     // a tensor index: [B, d]
      let h2 = tanh(cell(concat([x, h], axis = -1)))
      next h = h2                  // `next` sets the value for the next iteration; in this body
      emit states = h2             // `h` keeps its current value. Stacked: [T, B, d]
    }
    return last = h, states = permute(states, [1, 0, 2])   // [B, T, d]
  }

  // A static range needs no `max`; carried values keep their type in every iteration.
  entry powers(x: f32[N]) {
    loop i in 1..5 carry (p = x, total = zeros([N])) {
      next p = p * x, total = total + p
      emit step = i                                        // i64[]: emits stack to [4]
    }
    return p, total, step
  }
}
