// Pointer Networks (Vinyals, Fortunato, Jaitly, NeurIPS 2015), TSP and convex-hull decoding.
//
// An LSTM encoder reads the 2-d points one at a time; a second LSTM, started from the encoder's
// final state, decodes. At decoder step i the output distribution is the additive attention of
// the decoder state d_i over the encoder states e_j (paper eq. 3):
//
//     u^i_j = v^T tanh(W1 e_j + W2 d_i)            j = 1..n
//     p(C_i | C_1..C_{i-1}, P) = softmax_j(u^i)
//
// i.e. the attention weights *are* the output: the model points at one of its inputs. The input
// of decoder step i is the coordinates of the point chosen at step i-1 (a learned `go` vector at
// step 0). W1 E does not depend on i and is computed once, before the decoding loop.
//
// Entry points:
//   greedy(points)        TSP: N steps, visited points masked with -inf, argmax -> tour, log p(tour)
//   beam(points)          TSP beam search with a fixed beam width -> best tour, all beams, scores
//   hull(points)          convex hull: an EOS slot at pointer index 0, stop when every row chose it
//   scores(points, tour)  teacher-forced log-probabilities of a given tour (masked like `greedy`)
//
// Test configuration: hidden = 32. Paper: one LSTM layer of 256 or 512 units (`--set hidden=256`),
// uniform init in [-0.08, 0.08] (`init_scale`), n = 5..50 in training, up to 500 at test time
// (`max_points` bounds the run-time loops).

import std.nn.{Linear, LSTMCell}
import std.math.{log_softmax}

model PointerNet(
  hidden: int = 32,          // Hs: LSTM and attention width (paper 256 / 512)
  coords: int = 2,           // the points are read directly as 2-d coordinates (no embedding)
  beam_width: int = 3,       // K for `beam`; must not exceed the number of points N
  max_points: int = 1024,    // static bound of the run-time loops over N
  init_scale: float = 0.08,  // uniform(-0.08, 0.08) for v, go and eos, as in the paper
  hull_no_repeat: bool = true, // `hull`: mask points already output (false: the paper's unconstrained decoding)
) {
  encoder = LSTMCell(coords, hidden)               // e_j = LSTM_enc(P_j, e_{j-1})
  decoder = LSTMCell(coords, hidden)               // d_i = LSTM_dec(input_i, d_{i-1})
  w1 = Linear(hidden, hidden, has_bias = false)    // W1, applied to the encoder states
  w2 = Linear(hidden, hidden, has_bias = false)    // W2, applied to the decoder state
  param v: f32[hidden] = uniform(init_scale)       // v
  param go: f32[coords] = uniform(init_scale)      // decoder input at step 0 ("=>" in the paper)
  param eos: f32[coords] = uniform(init_scale)     // input vector of the EOS slot (hull only)

  // ---------------------------------------------------------------- building blocks

  // Runs the encoder LSTM over the points: x [B, N, coords] -> (E [B, N, hidden], h_N, c_N).
  fn encode(x: f32[B, N, C]) {
    let steps = transpose(x, 0, 1)                           // [N, B, C]: one row per time step
    loop j in 0..N max max_points carry (h = zeros([B, hidden]), c = zeros([B, hidden])) {
      let (h2, c2) = encoder(steps[j], h, c)
      next h = h2, c = c2
      emit states = h2                                      // stacked: [N, B, hidden]
    }
    return transpose(states, 0, 1), h, c
  }

  // u_j = v^T tanh(W1 e_j + W2 d) for all j: w1e [R, N, hidden] (precomputed W1 E), d [R, hidden]
  // -> [R, N].
  fn pointer_scores(w1e, d) = tanh(w1e + w2(d)[:, None, :]) @ v

  // The go vector for every row: [R, coords].
  fn go_rows(r) = expand(go[None, :], [r, coords])

  // Row `j[r]` of x[r] for every r: x [R, N, F], j i64[R] -> [R, F] (pointer -> coordinates).
  fn pick(x, j) {
    let (r, n, f) = shape(x)
    return gather(x, expand(j[:, None, None], [r, 1, f]), 1)[:, 0, :]
  }

  // One decoder step: LSTM, pointer scores, visited positions masked to -inf, log-softmax.
  fn step(w1e, x, h, c, visited) {
    let (h2, c2) = decoder(x, h, c)
    let u = where(visited, -inf, pointer_scores(w1e, h2))
    return log_softmax(u, axis = -1), h2, c2
  }

  // ---------------------------------------------------------------- TSP, greedy

  entry greedy(points: f32[B, N, coords]) {
    let (e, h0, c0) = encode(points)
    let w1e = w1(e)                                          // W1 E, once per input
    loop i in 0..N max max_points carry (
      h = h0, c = c0,
      x = go_rows(B),                                        // decoder input
      visited = zeros([B, N], bool),
      logp = zeros([B]),                                     // log p(tour so far)
    ) {
      let (lp, h2, c2) = step(w1e, x, h, c, visited)
      let j = argmax(lp, axis = -1)                          // [B] chosen point
      let lpj = gather(lp, j[:, None], 1)[:, 0]
      next h = h2, c = c2, x = pick(points, j), visited = visited | one_hot(j, N, bool), logp = logp + lpj
      emit chosen = j
    }
    return tour = transpose(chosen, 0, 1), logp             // i64 [B, N] (a permutation), f32 [B]
  }

  // ---------------------------------------------------------------- TSP, beam search

  // Beams are flattened into the batch: row b * K + k is beam k of example b. Every step scores
  // the K * N extensions (beam score + log p of the next point), keeps the top K per example,
  // and reorders every carried state by the parent beam (idx / N). With K = 1 this is `greedy`.
  entry beam(points: f32[B, N, coords]) {
    let k = beam_width
    let (e, h0, c0) = encode(points)
    let w1e = w1(e)
    // Repeat each example's state for its K beams: [B, ...] -> [B * K, ...].
    let w1e_k = reshape(expand(w1e[:, None], [B, k, N, hidden]), [B * k, N, hidden])
    let pts_k = reshape(expand(points[:, None], [B, k, N, coords]), [B * k, N, coords])
    let h0_k = reshape(expand(h0[:, None], [B, k, hidden]), [B * k, hidden])
    let c0_k = reshape(expand(c0[:, None], [B, k, hidden]), [B * k, hidden])
    // All beams start identical, so only beam 0 is live at first (the others score -inf).
    let score0 = where(iota([B, k], 1) == 0, 0.0, -inf)
    // Flat row index of the parent beam of each new beam: b * K + parent.
    let base = iota([B, k], 0) * k
    loop i in 0..N max max_points carry (
      h = h0_k, c = c0_k,
      x = go_rows(B * k),
      visited = zeros([B * k, N], bool),
      score = score0,                                        // [B, K] log p of each beam
      tours = zeros([B * k, N], i64),                        // the points chosen so far per beam
    ) {
      let (lp, h2, c2) = step(w1e_k, x, h, c, visited)       // lp [B*K, N]
      let cand = score[:, :, None] + reshape(lp, [B, k, N])  // [B, K, N]
      let (best, idx) = topk(reshape(cand, [B, k * N]), k)   // [B, K], sorted best first
      let parent = idx / N                                   // which beam it extends
      let j = reshape(idx % N, [B * k])                      // which point it adds
      let rows = reshape(base + parent, [B * k])
      let tours2 = dynamic_update_slice(take(tours, rows, 0), j[:, None], i, 1)
      next h = take(h2, rows, 0), c = take(c2, rows, 0),
           visited = take(visited, rows, 0) | one_hot(j, N, bool),
           x = pick(pts_k, j), score = best, tours = tours2
    }
    let beams = reshape(tours, [B, k, N])
    return tour = beams[:, 0, :], score = score[:, 0], beams, beam_scores = score
  }

  // ---------------------------------------------------------------- convex hull (EOS)

  // Pointer index 0 is an EOS slot whose encoder input is the learned `eos` vector; indices
  // 1..N are the points. One pointer per step until every row has pointed at EOS (at most N + 1
  // steps). The paper decodes hulls unconstrained; with `hull_no_repeat` (default) a point
  // already output is masked, so every row ends with EOS after at most N points even with random
  // weights. Outputs: `hull` i64 [B, N + 1] with pointer indices (1-based points) and 0 from the
  // EOS step on, `lengths` (points before EOS), and log p of the sequence including its EOS.
  entry hull(points: f32[B, N, coords]) {
    let inputs = concat([expand(eos[None, None, :], [B, 1, coords]), points], axis = 1)  // [B, N+1, C]
    let (e, h0, c0) = encode(inputs)
    let w1e = w1(e)
    let points_only = iota([B, N + 1], 1) != 0               // every slot but EOS
    loop i in 0..N + 1 max max_points carry (
      h = h0, c = c0, x = go_rows(B),
      visited = zeros([B, N + 1], bool),                     // stays all false unless hull_no_repeat
      done = zeros([B], bool),
      lengths = zeros([B], i64),
      logp = zeros([B]),
    ) until all(done) {
      let (lp, h2, c2) = step(w1e, x, h, c, visited)
      let j = argmax(lp, axis = -1)
      let lpj = gather(lp, j[:, None], 1)[:, 0]
      let done2 = done | (j == 0)
      let visited2 = if hull_no_repeat { visited | (one_hot(j, N + 1, bool) & points_only) } else { visited }
      next h = h2, c = c2, x = pick(inputs, j), visited = visited2, done = done2,
           lengths = lengths + cast(!done2, i64),
           logp = logp + where(done, 0.0, lpj)
      emit out = where(done, 0, j)                           // 0 (EOS) once a row is done
    }
    // `out` has N + 1 rows; rows after an early stop are 0, i.e. EOS padding.
    return hull = transpose(out, 0, 1), lengths, logp
  }

  // ---------------------------------------------------------------- teacher forcing

  // log p(tour | points) step by step, feeding the given tour (not the argmax) back in, with the
  // same visited mask as `greedy` (a revisit gets -inf). scores(points, greedy(points).tour)
  // reproduces greedy's log-probability.
  entry scores(points: f32[B, N, coords], tour: i64[B, N]) {
    let (e, h0, c0) = encode(points)
    let w1e = w1(e)
    let cols = transpose(tour, 0, 1)                         // [N, B]
    loop i in 0..N max max_points carry (
      h = h0, c = c0, x = go_rows(B), visited = zeros([B, N], bool),
    ) {
      let (lp, h2, c2) = step(w1e, x, h, c, visited)
      let j = cols[i]
      next h = h2, c = c2, x = pick(points, j), visited = visited | one_hot(j, N, bool)
      emit step_logp = gather(lp, j[:, None], 1)[:, 0]
    }
    let step_logp = transpose(step_logp, 0, 1)              // [B, N]
    return step_logp, logp = sum(step_logp, axis = 1)
  }
}
