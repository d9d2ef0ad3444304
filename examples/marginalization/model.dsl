// Generative Marginalization Models, MaM (Liu, Ramadge, Adams; ICML 2024, arXiv 2310.12920).
//
// A distribution over D discrete variables with K categories each. Any subset x_s can be
// observed; the others are marginalised out and shown to the network as "?" (here the id K, so
// the input vocabulary has K + 1 entries). One bidirectional transformer trunk feeds two heads:
//
//   marginal head θ:     f_θ(x_s) = log p̃_θ(x_s), a scalar per sample, normalised by
//                        log Z = f_θ(?...?):  log p_θ(x_s) = f_θ(x_s) - f_θ(?...?)
//                        (one forward pass per marginal query: the paper's O(1) speed-up)
//   conditional head φ:  p_φ(x_i | x_s) for every unobserved i (an any-order autoregressive
//                        model, used for sampling)
//
// Training makes the two consistent (paper eq. 5): for any order σ and step d,
//   log p_θ(x_σ(<d)) + log p_φ(x_σ(d) | x_σ(<d)) = log p_θ(x_σ(≤d)),
// and summing out the next variable, sum_k p_θ(x_s, x_i = k) = p_θ(x_s). `self_consistency`
// computes both sides; they agree only for a trained model.
//
// Entry points:
//   log_marginal(x)            log p(x_s) in one pass: x i64 [B, D], value K = "?" -> f32 [B]
//   conditional(x)             log p_φ(x_i = k | x_s): f32 [B, D, K] (observed i: a delta at x_i)
//   self_consistency(x, pos)   log p(x_s) and logsumexp_k log p(x_s, x_pos = k), and the terms
//   sample(x, seed)            fills the "?" positions of x in a random order, one variable per
//                              step (D steps), Gumbel-max from p_φ -> i64 [B, D]
//
// Trunk as in the reference TransformerNet (text8): embedding of the K + 1 ids, a fixed
// sinusoidal position encoding, L pre-LN blocks (bidirectional MHA, GELU MLP), final LayerNorm.
// Test configuration: D = 8, K = 4, d = 32, 2 layers, 4 heads. Paper (text8): D = 250, K = 27,
// d = 768, 12 layers, 12 heads, MLP 3072, marginal MLP hidden 3072:
//   --set D=250 --set K=27 --set d=768 --set layers=12 --set heads=12 --set mlp=3072 --set marg_hidden=3072

import std.nn.{Linear, Embedding, LayerNorm, GeluMLP}
import std.attention.{MultiHeadAttention}
import std.math.{gelu, log_softmax, logsumexp, sample_categorical}

// A pre-LN transformer block without a mask: x += Attn(LN(x)); x += MLP(LN(x)).
block EncoderBlock(d: int, heads: int, hidden: int) {
  ln1 = LayerNorm(d)
  attn = MultiHeadAttention(d, heads, has_bias = true)
  ln2 = LayerNorm(d)
  mlp = GeluMLP(d, hidden)

  fn forward(x) {
    let x = x + attn(ln1(x))
    return x + mlp(ln2(x))
  }
}

// The fixed sinusoidal position encoding of "Attention is all you need":
// pe[p, 2i] = sin(p / 10000^(2i/d)), pe[p, 2i+1] = cos(p / 10000^(2i/d)). -> f32 [n, d].
fn sinusoidal_positions(n: int, d: int) {
  let freq = exp(arange(d / 2, dtype = f32) * (-2.0 * log(10000.0) / d))   // [d/2]
  let a = arange(n, dtype = f32)[:, None] * freq[None, :]                  // [n, d/2]
  return reshape(stack([sin(a), cos(a)], axis = -1), [n, d])               // interleaved
}

model MarginalizationModel(
  D: int = 8,                // number of variables (paper text8: 250)
  K: int = 4,                // categories per variable (text8: 27); the id K means "?"
  d: int = 32,               // model width (768)
  layers: int = 2,           // transformer blocks (12)
  heads: int = 4,            // attention heads (12)
  mlp: int = 4 * d,          // block MLP hidden size (3072)
  marg_hidden: int = 4 * d,  // marginal head MLP hidden size (3072)
) {
  let unknown = K            // the "?" id

  embed = Embedding(K + 1, d)
  blocks = repeat(layers) EncoderBlock(d, heads, mlp)
  ln_f = LayerNorm(d)
  // marginal head θ ("dense_cls"): mean-pool over D, then d -> h -> h -> 1 with GELU
  marg1 = Linear(d, marg_hidden)
  marg2 = Linear(marg_hidden, marg_hidden)
  marg3 = Linear(marg_hidden, 1)
  // conditional head φ ("dense"): per position d -> d -> d -> K with GELU
  cond1 = Linear(d, d)
  cond2 = Linear(d, d)
  cond3 = Linear(d, K)

  // ---------------------------------------------------------------- the network

  // Y = trunk(x^aug): i64 [R, D] -> f32 [R, D, d].
  fn trunk(x) {
    let h = embed(x) + sinusoidal_positions(D, d)[None]
    let h = blocks(h)
    return ln_f(h)
  }

  // f_θ(x_s) = log p̃_θ(x_s) from the trunk output: [R, D, d] -> [R].
  fn marginal_head(y) {
    let pooled = mean(y, axis = 1)
    return marg3(gelu(marg2(gelu(marg1(pooled)))))[:, 0]
  }

  // log p_φ(x_i = k | x_s) at every position: [R, D, d] -> [R, D, K].
  fn conditional_head(y) = log_softmax(cond3(gelu(cond2(gelu(cond1(y))))), axis = -1)

  // log Z = f_θ(?...?): a scalar.
  fn log_z() = marginal_head(trunk(full([1, D], unknown, i64)))[0]

  // ---------------------------------------------------------------- entry points

  entry log_marginal(x: i64[B, D]) {
    let lz = log_z()
    return log_p = marginal_head(trunk(x)) - lz, log_z = lz
  }

  entry conditional(x: i64[B, D]) {
    let lp = conditional_head(trunk(x))                               // [B, D, K]
    // An observed x_i is certain: log-prob 0 at its value and -inf elsewhere.
    let delta = where(one_hot(x, K, bool), 0.0, -inf)
    return logp = where((x == unknown)[:, :, None], lp, delta)
  }

  // pos i64 [B] picks the next variable; x[pos] is ignored (treated as "?"). Returns
  //   log_p         log p_θ(x_s)                                  [B]
  //   log_p_next    log p_θ(x_s, x_pos = k) for every k            [B, K]
  //   log_p_sum     logsumexp_k log_p_next  (= log_p when trained) [B]
  //   cond_logp     log p_φ(x_pos = k | x_s)  (= log_p_next - log_p when trained)  [B, K]
  //   gap           log_p_sum - log_p: the marginalisation error (0 when trained)  [B]
  //   err           log_p + cond_logp - log_p_next: the paper's one-step self-consistency
  //                 error (eq. 5) for every value k of x_pos (0 when trained)       [B, K]
  entry self_consistency(x: i64[B, D], pos: i64[B]) {
    let at = pos[:, None]                                             // [B, 1]
    let xs = scatter(x, at, unknown, 1)                               // x_s: pos marginalised out
    let lz = log_z()
    let y = trunk(xs)
    let lp = marginal_head(y) - lz
    // The K completions x_s ∪ {x_pos = k}, batched: [B, K, D] -> [B * K, D].
    let xk = scatter(expand(xs[:, None, :], [B, K, D]), expand(at[:, :, None], [B, K, 1]), iota([B, K, 1], 1), 2)
    let lpk = reshape(marginal_head(trunk(reshape(xk, [B * K, D]))), [B, K]) - lz
    let cond = gather(conditional_head(y), expand(at[:, :, None], [B, 1, K]), 1)[:, 0, :]
    let lsum = logsumexp(lpk, axis = -1)
    return log_p = lp, log_p_sum = lsum, log_p_next = lpk, cond_logp = cond,
           gap = lsum - lp, err = lp[:, None] + cond - lpk
  }

  // Any-order sampling (conditional infill when x has observed values; pass all "?" for an
  // unconditional sample). σ = argsort of Philox uniforms (by a full top-k), with the observed
  // positions sorted last; step t writes x_σ(t) ~ p_φ(· | x) by Gumbel-max with noise stream
  // offset t + 1. Returns the samples, σ, and log p_φ of the written values along σ (the
  // any-order autoregressive log-likelihood of this order).
  entry sample(x: i64[B, D], seed: i64[]) {
    let u = rand(seed, [B, D])                                        // stream offset 0
    let key = where(x == unknown, u, u - 1.0)                         // observed positions last
    let (_, order) = topk(key, D)                                     // σ: [B, D]
    let steps = transpose(order, 0, 1)                                // [D, B]
    loop t in 0..D carry (xs = x, logp = zeros([B])) {
      let p = steps[t][:, None]                                       // [B, 1] position σ(t)
      let lp = conditional_head(trunk(xs))                            // [B, D, K]
      let lp_p = gather(lp, expand(p[:, :, None], [B, 1, K]), 1)[:, 0, :]   // [B, K]
      let v = sample_categorical(lp_p, seed, t + 1)                   // [B]
      let old = gather(xs, p, 1)[:, 0]
      let free = old == unknown                                       // observed values stay
      let new = where(free, v, old)
      next xs = scatter(xs, p, new[:, None], 1),
           logp = logp + where(free, gather(lp_p, v[:, None], 1)[:, 0], 0.0)
    }
    return samples = xs, order, logp
  }
}
