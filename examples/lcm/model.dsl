// Large Concept Models (LCM team, Meta FAIR, arXiv 2412.08821, Dec 2024).
//
// A "concept" is one sentence embedded by a frozen sentence encoder (SONAR, R^1024, in the paper;
// here any fixed-size sentence embedding). The LCM is autoregressive over sentences: it reads the
// embeddings of sentences 0..n-1 and predicts the embedding of sentence n. A separate frozen
// decoder (not part of this graph) turns predicted embeddings back into text.
//
// Two variants, sharing the normaliser:
//   * Base-LCM (paper section 2.2): PreNet -> causal transformer -> PostNet, trained with MSE.
//     Entries `forward` (one pass, every position predicts the next sentence) and
//     `generate_base` (sentence loop).
//   * Two-Tower diffusion LCM (paper section 2.3): a causal "contextualiser" over the context and a
//     "denoiser" that turns noise into the next embedding by DDIM with classifier-free guidance.
//     Entries `denoise` (training-style x0 prediction at every position) and `generate`
//     (sentence loop outside, DDIM loop inside).
//
// Sizes: the defaults are the CPU-test configuration (the repo's `toy_*` archs with a 32-d
// embedding). Paper configurations, by hyperparameters alone:
//   Base-LCM 1.6B:     --set sonar_dim=1024 --set d=2048 --set heads=16 --set base_layers=32
//   Two-Tower 1.6B:    --set sonar_dim=1024 --set d=2048 --set heads=16 --set ctx_layers=5 --set denoiser_layers=13
//   Two-Tower 7B:      --set sonar_dim=1024 --set d=4096 --set heads=32 --set ctx_layers=5 --set denoiser_layers=14
//   inference defaults of the paper: --set steps=40 (guidance 3, rescale 0.7, sigma_init 0.6, eps scaling 1.00045
//   are already the defaults).

import std.math
import std.nn
import std.attention

// ------------------------------------------------------------------------------------------
// Shared pieces

/// The fixed affine "robust scaler" fitted on SONAR vectors: norm(x) = (x - center) / scale with
/// center = median and scale = inter-quantile range. Loaded from the weights file; the defaults
/// (0, 1) make it the identity.
block SonarNormalizer(dim: int) {
  param center: f32[dim] = zeros
  param scale: f32[dim] = ones

  fn normalize(x) = (x - center) / scale
  fn denormalize(x) = x * scale + center
}

/// Pre-norm LLaMA-style decoder layer used by both sequence towers: RMSNorm, causal multi-head
/// self-attention with RoPE on queries and keys, RMSNorm, SwiGLU FFN.
/// x [B, T, d], pos i64 [T] -> [B, T, d].
block DecoderLayer(d: int, heads: int, ffn: int, rope_base: float = 10000.0) {
  attn_norm = RMSNorm(d)
  attn = MultiHeadAttention(d, heads)
  ffn_norm = RMSNorm(d)
  mlp = SwiGLU(d, ffn)

  fn forward(x, pos) {
    let h = attn_norm(x)
    let q = rope(split_heads(attn.q_proj(h), heads), pos, rope_base)
    let (k, v) = attn.project_kv(h)
    let k = rope(k, pos, rope_base)
    let x = x + attn.o_proj(merge_heads(attention(q, k, v, causal = true)))
    return x + mlp(ffn_norm(x))
  }
}

/// A stack of causal decoder layers with a final RMSNorm. x [B, T, d] -> [B, T, d].
/// Position t only sees positions <= t, so padding after the last real sentence never changes
/// the outputs of the real ones.
block CausalTransformer(n_layers: int, d: int, heads: int, ffn: int, rope_base: float = 10000.0) {
  layers = repeat(n_layers) DecoderLayer(d, heads, ffn, rope_base)
  final_norm = RMSNorm(d)

  fn forward(x) {
    let pos = arange(dim(x, 1))
    return final_norm(layers(x, pos))
  }
}

// ------------------------------------------------------------------------------------------
// Base-LCM: h = PreNet(norm(x)) -> causal transformer -> y = denorm(PostNet(h)).
// y_n predicts x_{n+1}.

block BaseLCM(sonar_dim: int, d: int, heads: int, n_layers: int, ffn: int, rope_base: float) {
  prenet = Linear(sonar_dim, d)
  decoder = CausalTransformer(n_layers, d, heads, ffn, rope_base)
  postnet = Linear(d, sonar_dim)

  /// x_norm [B, N, sonar_dim] (normalised) -> normalised predictions [B, N, sonar_dim].
  fn forward(x_norm) = postnet(decoder(prenet(x_norm)))
}

// ------------------------------------------------------------------------------------------
// Two-Tower diffusion LCM

/// The AdaLN modulator of one denoiser layer: SiLU(emb) @ W^T + b, split into `n` chunks of
/// size d. Zero-initialised, so a fresh denoiser layer is the identity on the residual stream.
block AdaLNModulator(d: int, n: int) {
  param weight: f32[n * d, d] = zeros
  param bias: f32[n * d] = zeros

  fn forward(emb) = silu(emb) @ transpose(weight) + bias
}

/// (1 + scale) * x + shift (DiT's `modulate`).
fn modulate(x, shift, scale) = x * (1.0 + scale) + shift

/// One denoiser layer. Each sub-block is y = x + gate * Sub((1 + scale) * Norm(x) + shift),
/// with (shift, scale, gate) from the timestep embedding:
///   * self-attention: each position sees only itself (diagonal mask);
///   * cross-attention to [0-vector ; contextualised c] with the shifted-causal mask
///     (position n sees the zero vector and c_0..c_{n-1}); attending to the zero vector alone
///     is the unconditional branch of classifier-free guidance;
///   * SwiGLU feed-forward.
/// x [B, T, d]; emb [B, T, d]; ctx [B, Tc, d]; self_mask [T, T] bool; cross_mask bool
/// broadcastable to [B, heads, T, Tc].
block DenoiserLayer(d: int, heads: int, ffn: int) {
  self_attn_norm = RMSNorm(d)
  self_attn = MultiHeadAttention(d, heads)
  cross_attn_norm = RMSNorm(d)
  cross_attn = MultiHeadAttention(d, heads)
  ffn_norm = RMSNorm(d)
  mlp = SwiGLU(d, ffn)
  modulator = AdaLNModulator(d, 9)

  /// Keys and values of the cross-attention memory ctx [B, Tc, d]: (k, v), each [B, heads, Tc, dh].
  /// They depend on neither the latent nor the timestep, so a sampler computes them once per
  /// sentence, not once per denoising step.
  fn memory_kv(ctx) = cross_attn.project_kv(ctx)

  fn forward(x, emb, ctx, self_mask, cross_mask) {
    let (k, v) = memory_kv(ctx)
    return forward_kv(x, emb, k, v, self_mask, cross_mask)
  }

  /// `forward` with the memory's keys and values already projected (`memory_kv`).
  fn forward_kv(x, emb, k, v, self_mask, cross_mask) {
    let m = modulator(emb)
    let (shift_sa, scale_sa, gate_sa) = (m[..., 0:d], m[..., d:2 * d], m[..., 2 * d:3 * d])
    let (shift_ca, scale_ca, gate_ca) = (m[..., 3 * d:4 * d], m[..., 4 * d:5 * d], m[..., 5 * d:6 * d])
    let (shift_ff, scale_ff, gate_ff) = (m[..., 6 * d:7 * d], m[..., 7 * d:8 * d], m[..., 8 * d:])
    let x = x + gate_sa * self_attn(modulate(self_attn_norm(x), shift_sa, scale_sa), mask = self_mask)
    let x = x + gate_ca * cross_attn.attend(modulate(cross_attn_norm(x), shift_ca, scale_ca), k, v, mask = cross_mask)
    return x + gate_ff * mlp(modulate(ffn_norm(x), shift_ff, scale_ff))
  }
}

/// The denoiser tower: pre-denoiser Linear(sonar_dim -> d), timestep embedder (256-d sinusoid ->
/// two-layer SiLU MLP), AdaLN layers, a final AdaLN-modulated norm and the post-denoiser
/// Linear(d -> sonar_dim) predicting x0 (not epsilon). No positional embedding.
block Denoiser(sonar_dim: int, d: int, heads: int, n_layers: int, ffn: int, freq_dim: int) {
  pre = Linear(sonar_dim, d)
  t_embedder = TimestepEmbedder(d, freq_dim)
  layers = repeat(n_layers) DenoiserLayer(d, heads, ffn)
  final_norm = RMSNorm(d)
  final_modulator = AdaLNModulator(d, 2)
  post = Linear(d, sonar_dim)

  /// x_t [B, T, sonar_dim] (normalised, noisy); t [B, T] diffusion timesteps (any numeric
  /// dtype); ctx [B, Tc, d] (zero vector first); cross_mask bool, broadcastable to
  /// [B, heads, T, Tc]. Returns x0_hat [B, T, sonar_dim] (normalised).
  fn forward(x_t, t, ctx, cross_mask) = run(x_t, t, ctx, None, None, cross_mask)

  /// The cross-attention keys and values of every layer for the memory ctx [B, Tc, d]:
  /// (ks, vs), each [n_layers, B, heads, Tc, dh].
  fn memory_kv(ctx) {
    let ks = zeros([n_layers, dim(ctx, 0), heads, dim(ctx, 1), d / heads])
    let vs = ks
    for i in 0..n_layers {
      let (k, v) = layers[i].memory_kv(ctx)
      let ks = dynamic_update_slice(ks, k[None], i, axis = 0)
      let vs = dynamic_update_slice(vs, v[None], i, axis = 0)
    }
    return ks, vs
  }

  /// `forward` with the memory already projected by `memory_kv` (the sampler's inner loop).
  fn forward_kv(x_t, t, ks, vs, cross_mask) = run(x_t, t, None, ks, vs, cross_mask)

  /// The denoiser over the memory ctx, or over its projected keys/values (ks, vs) when ctx is None.
  fn run(x_t, t, ctx, ks, vs, cross_mask) {
    let (b, n) = (dim(t, 0), dim(t, 1))
    let emb = reshape(t_embedder(reshape(t, [b * n])), [b, n, d])
    let self_mask = iota([n, n], 0) == iota([n, n], 1)      // diagonal: each position sees itself
    let h = pre(x_t)
    for i in 0..n_layers {
      let h = if ctx == None {
        layers[i].forward_kv(h, emb, ks[i], vs[i], self_mask, cross_mask)
      } else {
        layers[i](h, emb, ctx, self_mask, cross_mask)
      }
    }
    let m = final_modulator(emb)
    return post(modulate(final_norm(h), m[..., 0:d], m[..., d:]))
  }
}

block TwoTowerLCM(sonar_dim: int, d: int, heads: int, ctx_layers: int, denoiser_layers: int, ffn: int,
                  freq_dim: int, rope_base: float) {
  frontend = Linear(sonar_dim, d)                                     // PreNet of the contextualiser
  contextualizer = CausalTransformer(ctx_layers, d, heads, ffn, rope_base)
  denoiser = Denoiser(sonar_dim, d, heads, denoiser_layers, ffn, freq_dim)

  /// The contextualiser over normalised embeddings: [B, N, sonar_dim] -> c [B, N, d].
  fn encode(x_norm) = contextualizer(frontend(x_norm))

  /// Cross-attention memory [0-vector ; c]: [B, N, d] -> [B, N + 1, d].
  fn memory(c) = concat([zeros_like(c[:, 0:1]), c], axis = 1)
}

// ------------------------------------------------------------------------------------------
// DDIM noise schedule: cosine schedule over T training steps, rescaled to zero
// terminal SNR (Lin et al. 2024). alpha_bar(s) = cos^2((s + 0.008) / 1.008 * pi / 2);
// beta_i = min(1 - alpha_bar((i+1)/T) / alpha_bar(i/T), 0.999); alphas_cumprod = cumprod(1 - beta);
// then sqrt(alphas_cumprod) is shifted and scaled so that its last entry is 0 and its first is
// unchanged. Only constants go in, so the table is a constant of the graph: f32 [T].
fn alphas_cumprod_table(T: int) {
  let u = arange(T + 1, dtype = f32) / T
  let f = cos((u + 0.008) / 1.008 * (pi / 2))
  let abar = f * f
  let betas = minimum(1.0 - abar[1:] / abar[:-1], 0.999)
  let ac = exp(cumsum(log(1.0 - betas), axis = 0))
  let sq = sqrt(ac)
  let (first, last) = (sq[0], sq[T - 1])
  let sq = (sq - last) * (first / (first - last))
  return sq * sq
}

fn clip(x, bound) = maximum(minimum(x, bound), -bound)

// ------------------------------------------------------------------------------------------

model LargeConceptModel(
  sonar_dim: int = 32,            // sentence-embedding size: paper 1024 (SONAR); 384 for MiniLM
  d: int = 64,                    // model width: paper 2048 (1.6B models), 4096 (Two-Tower 7B)
  heads: int = 4,                 // paper 16 (1.6B), 32 (7B)
  ffn: int = 4 * d,               // SwiGLU inner size: paper 4d (8192 at d = 2048)
  base_layers: int = 2,           // Base-LCM depth: paper 32
  ctx_layers: int = 2,            // Two-Tower contextualiser depth: paper 5
  denoiser_layers: int = 2,       // Two-Tower denoiser depth: paper 13 (1.6B), 14 (7B)
  freq_dim: int = 256,            // sinusoidal timestep features
  rope_base: float = 10000.0,
  train_steps: int = 100,         // T, diffusion steps the model was trained with (paper 100)
  steps: int = 4,                 // S, DDIM inference steps ("trailing" spacing): paper 40
  guidance_scale: float = 3.0,    // g_scale (paper 3)
  guidance_rescale: float = 0.7,  // g_rescale (paper 0.7)
  sigma_init: float = 0.6,        // initial noise scale (paper 0.6)
  eps_scaling: float = 1.00045,   // lambda_eps: epsilon divided by this in each DDIM step (paper 1.00045)
  clip_noise: float = 100.0,      // the initial noise is clipped to [-clip_noise, clip_noise]
  clip_x0: float = 10.0,          // x0 estimates are clipped to [-clip_x0, clip_x0] (normalised space)
  max_new: int = 4,               // sentences generated at most (the paper stops at the document's end)
  stop_threshold: float = 0.9,    // stop when cos(y, "End of text.") or cos(y, previous) >= this
) {
  normalizer = SonarNormalizer(sonar_dim)
  base = BaseLCM(sonar_dim, d, heads, base_layers, ffn, rope_base)
  two_tower = TwoTowerLCM(sonar_dim, d, heads, ctx_layers, denoiser_layers, ffn, freq_dim, rope_base)

  /// Base-LCM next-sentence prediction in raw embedding space: [B, N, D] -> [B, N, D].
  fn base_predict(x) = normalizer.denormalize(base(normalizer.normalize(x)))

  /// The stopping rule of the LCM generator: the new embedding y [B, D] is close to the
  /// "End of text." embedding eot [D] or to the previous sentence prev [B, D].
  fn should_stop(y, eot, prev) {
    let to_end = cosine_similarity(y, eot[None, :]) >= stop_threshold
    let to_prev = cosine_similarity(y, prev) >= stop_threshold
    return to_end | to_prev
  }

  /// One DDIM step (eta = 0) of the Two-Tower model with classifier-free guidance on a doubled
  /// batch. x [B, 1, D] normalised latent at timestep t; ac the alphas_cumprod table; k the
  /// DDIM step index (i64 scalar); (mk2, mv2) the denoiser's cross-attention keys/values of the
  /// memory twice (`memory_kv` of [2B, Tc, d], computed once per sentence); mask2 [2B, 1, 1, Tc]
  /// (conditional rows first, then unconditional rows). Returns the latent at the previous
  /// timestep [B, 1, D].
  fn ddim_step(x, k, ac, mk2, mv2, mask2) {
    let b = dim(x, 0)
    // "trailing" timesteps: t_k = round(T - k * T / S) - 1, previous t_k - T // S
    let t = cast(round(float(train_steps) - cast(k, f32) * (float(train_steps) / steps)), i64) - 1
    let t_prev = t - train_steps / steps
    let a_t = ac[t]
    let a_prev = where(t_prev >= 0, ac[maximum(t_prev, 0)], 1.0)
    // conditional and unconditional x0 predictions in one call
    let x2 = concat([x, x], axis = 0)
    let t2 = expand(cast(t, f32), [2 * b, 1])
    let x0_2 = two_tower.denoiser.forward_kv(x2, t2, mk2, mv2, mask2)
    let (x0_c, x0_u) = (x0_2[0:b], x0_2[b:])
    // x0 -> epsilon: eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)
    let (sa, sb) = (sqrt(a_t), sqrt(1.0 - a_t))
    let eps_c = (x - sa * x0_c) / sb
    let eps_u = (x - sa * x0_u) / sb
    // classifier-free guidance and guidance rescale (Lin et al. 2024)
    let eps = eps_u + guidance_scale * (eps_c - eps_u)
    let eps_r = eps * (std(eps_c, axis = [1, 2], keepdim = true) / std(eps, axis = [1, 2], keepdim = true))
    let eps = guidance_rescale * eps_r + (1.0 - guidance_rescale) * eps
    let eps = eps / eps_scaling
    // back to x0. At the zero-SNR first step (a_t = 0) x0 is not recoverable from eps; there the
    // guided x0 is taken directly (CFG is affine, so both agree up to the rescale).
    let x0_cfg = x0_u + guidance_scale * (x0_c - x0_u)
    let x0 = where(a_t > 0.0, (x - sb * eps) / sqrt(maximum(a_t, 1e-12)), x0_cfg)
    let x0 = clip(x0, clip_x0)
    return sqrt(a_prev) * x0 + sqrt(1.0 - a_prev) * eps
  }

  /// Base-LCM, training-style: every position n predicts sentence n + 1.
  /// x [B, N, sonar_dim] raw embeddings -> predictions [B, N, sonar_dim] (raw space).
  entry forward(x: f32[B, N, sonar_dim]) -> f32[B, N, sonar_dim] {
    return predictions = base_predict(x)
  }

  /// Base-LCM generation: one forward per new sentence over a preallocated buffer of
  /// N + max_new embeddings; the prediction at the last filled position is appended.
  /// prompt [B, N, D]; eot [D] the embedding of "End of text.".
  /// Returns sentences [B, max_new, D] (zeros after a row stops) and lengths [B] (sentences
  /// generated per row, counting the one that triggered the stop).
  entry generate_base(prompt: f32[B, N, sonar_dim], eot: f32[sonar_dim]) {
    let buf = concat([prompt, zeros([B, max_new, sonar_dim])], axis = 1)
    loop s in 0..max_new carry (buf = buf, done = zeros([B], bool), lengths = zeros([B], i64), prev = prompt[:, N - 1]) until all(done) {
      let n = s + N                                          // index of the sentence being generated
      let y = dynamic_slice(base_predict(buf), n - 1, 1, axis = 1)[:, 0]
      let y = where(done[:, None], 0.0, y)
      next buf = dynamic_update_slice(buf, y[:, None], n, axis = 1),
           lengths = lengths + where(done, 0, 1),
           done = done | should_stop(y, eot, prev),
           prev = y
      emit sentences = y
    }
    return sentences = permute(sentences, [1, 0, 2]), lengths = lengths
  }

  /// Two-Tower, training-style denoising: x0 prediction for every position at once.
  /// x_t [B, N, D] noisy normalised embeddings, t [B, N] their timesteps, x [B, N, D] the clean
  /// raw context. Position n cross-attends to [0 ; c_0 .. c_{n-1}] (shifted-causal mask).
  /// Returns x0_hat [B, N, D] (normalised space).
  entry denoise(x_t: f32[B, N, sonar_dim], t: i64[B, N], x: f32[B, N, sonar_dim]) -> f32[B, N, sonar_dim] {
    let mem = two_tower.memory(two_tower.encode(normalizer.normalize(x)))   // [B, N + 1, d]
    let shifted_causal = iota([N, N + 1], 1) <= iota([N, N + 1], 0)        // key j <= query n
    return x0 = two_tower.denoiser(x_t, t, mem, shifted_causal)
  }

  /// Two-Tower generation: sentences outside, DDIM steps inside.
  /// For each new sentence n: contextualise the buffer, draw x_T ~ N(0, sigma_init^2) (clipped,
  /// Philox noise from `seed`, a fresh stream per sentence), run `steps` guided DDIM steps,
  /// denormalise x0 and append it. prompt [B, N, D]; eot [D]; seed i64 scalar.
  /// Returns sentences [B, max_new, D] (zeros after a row stops) and lengths [B].
  entry generate(prompt: f32[B, N, sonar_dim], eot: f32[sonar_dim], seed: i64[]) {
    let ac = alphas_cumprod_table(train_steps)
    let L = N + max_new
    let buf = concat([prompt, zeros([B, max_new, sonar_dim])], axis = 1)
    loop s in 0..max_new carry (buf = buf, done = zeros([B], bool), lengths = zeros([B], i64), prev = prompt[:, N - 1]) until all(done) {
      let n = s + N
      // contextualiser over the whole buffer (causal: the unfilled tail does not leak back)
      let mem = two_tower.memory(two_tower.encode(normalizer.normalize(buf)))   // [B, L + 1, d]
      let key = iota([L + 1], 0)
      let cond = expand((key <= n)[None, :], [B, L + 1])       // zero vector + c_0 .. c_{n-1}
      let uncond = expand((key == 0)[None, :], [B, L + 1])     // zero vector only
      let mask2 = concat([cond, uncond], axis = 0)[:, None, None, :]
      let (mk2, mv2) = two_tower.denoiser.memory_kv(concat([mem, mem], axis = 0))   // once per sentence
      let x_init = clip(sigma_init * randn(seed, [B, 1, sonar_dim], s), clip_noise)
      loop k in 0..steps carry (x = x_init) {
        next x = ddim_step(x, k, ac, mk2, mv2, mask2)
      }
      let y = where(done[:, None], 0.0, normalizer.denormalize(x[:, 0]))
      next buf = dynamic_update_slice(buf, y[:, None], n, axis = 1),
           lengths = lengths + where(done, 0, 1),
           done = done | should_stop(y, eot, prev),
           prev = y
      emit sentences = y
    }
    return sentences = permute(sentences, [1, 0, 2]), lengths = lengths
  }
}
