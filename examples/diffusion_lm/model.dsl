// A masked (absorbing-state) discrete diffusion language model, MDLM / LLaDA style.
//
// Forward process: every token is independently replaced by [M] with probability t. The
// network is a *bidirectional* transformer that predicts p_θ(x_0 | x_t) at every position, in one
// pass over the whole fixed-length sequence (no causal mask, no KV cache). Generation starts
// from a fully masked answer and unmasks it over S steps.
//
// Denoiser (LLaDA: a LLaMA-style transformer with the causal mask removed): token embedding,
// L pre-norm blocks  x += Attn(RMSNorm(x)) with RoPE;  x += SwiGLU(RMSNorm(x)),  a final RMSNorm
// and a linear head to V logits. No time input (LLaDA; also MDLM's default, where the noise level
// conditioning is off, so its adaLN modulations are constant).
//
// Entry points:
//   denoise(tokens)        logits f32 [B, L, V] of p_θ(x_0 | x_t) for a partially masked sequence
//   sample(prompt, seed)   LLaDA sampler, low-confidence remasking: x = [prompt ; [M] x gen_len];
//                          S steps (optionally in semi-autoregressive blocks); each step predicts
//                          every masked token (argmax, or Gumbel-max at `temperature` > 0) and
//                          commits the k most confident masked positions of the current block,
//                          k following LLaDA's linear schedule; committed tokens never change.
//                          -> tokens i64 [B, P + gen_len], committed count per step [S, B],
//                             the tokens after every step [S, B, P + gen_len]
//   sample_mdlm(prompt, seed)  MDLM ancestral sampler (`ddpm_cache` update, log-linear schedule,
//                          SUBS parameterisation, Philox noise) -> tokens i64 [B, P + gen_len]
//   elbo(x0, seed)         MDLM's continuous-time NELBO of clean sequences (an upper bound on
//                          -log p(x_0), nats), Monte Carlo over `elbo_samples` stratified times
//                          -> nelbo f32 [B], and each draw's t, mask and weighted loss
//
// Vocabulary: V ids including [M] = mask_id (V - 1 here; LLaDA uses 126336 in a 126464 vocab).
// Test configuration: V = 32, L = 16 (prompt 4 + gen_len 12), d = 32, 2 layers, 4 heads, S = 8.
// LLaDA 8B: --set V=126464 --set mask_id=126336 --set d=4096 --set layers=32 --set heads=32
//           --set ffn=12288 --set norm_eps=1e-5 --set rope_base=500000.0, and its chat sampler
//           --set gen_len=128 --set steps=128 --set block_len=32.
// MDLM small: 12 layers, d = 768, 12 heads (its DiT backbone differs: LayerNorm, GELU MLP, adaLN).

import std.nn.{Embedding, Linear, RMSNorm, SwiGLU}
import std.attention.{MultiHeadAttention, split_heads, merge_heads, attention, rope}
import std.math.{softmax, log_softmax}

// One LLaDA block: bidirectional RoPE self-attention and a SwiGLU MLP, both pre-RMSNorm.
block DenoiserBlock(d: int, heads: int, ffn: int, eps: float, rope_base: float) {
  attn_norm = RMSNorm(d, eps)
  attn = MultiHeadAttention(d, heads)       // q/k/v/o projections without bias, 32 KV heads in LLaDA
  ffn_norm = RMSNorm(d, eps)
  mlp = SwiGLU(d, ffn)

  // x [B, L, d], pos i64 [L] -> [B, L, d]
  fn forward(x, pos) {
    let h = attn_norm(x)
    let q = rope(split_heads(attn.q_proj(h), heads), pos, rope_base)
    let (k, v) = attn.project_kv(h)
    let a = attention(q, rope(k, pos, rope_base), v)              // no mask: every token sees all
    let x = x + attn.o_proj(merge_heads(a))
    return x + mlp(ffn_norm(x))
  }
}

model MaskedDiffusionLM(
  V: int = 32,                 // vocabulary size, [M] included
  mask_id: int = V - 1,        // the [M] token
  d: int = 32,                 // model width
  layers: int = 2,
  heads: int = 4,
  ffn: int = 3 * d,            // SwiGLU hidden size (LLaDA 8B: 12288 = 3 * 4096)
  norm_eps: float = 1e-6,
  rope_base: float = 10000.0,
  gen_len: int = 12,           // tokens generated after the prompt (L = P + gen_len)
  steps: int = 8,              // S sampling steps in total
  block_len: int = gen_len,    // semi-AR block size; gen_len / block_len blocks of steps / blocks steps
  temperature: float = 0.0,    // Gumbel-max temperature for `sample` (0: greedy argmax)
  mdlm_eps: float = 1e-5,      // MDLM: last timestep (timesteps = linspace(1, eps, S + 1))
  noise_eps: float = 1e-3,     // MDLM log-linear schedule: masking probability (1 - eps) t
  elbo_samples: int = 4,       // `elbo`: Monte Carlo draws of (t, mask) per sequence
) {
  embed = Embedding(V, d)
  blocks = repeat(layers) DenoiserBlock(d, heads, ffn, norm_eps, rope_base)
  norm = RMSNorm(d, norm_eps)
  lm_head = Linear(d, V, has_bias = false)

  let n_blocks = gen_len / block_len     // LLaDA requires gen_len % block_len == 0
  let block_steps = steps / n_blocks     // ... and steps % n_blocks == 0

  // ---------------------------------------------------------------- the denoiser

  // f_θ(x_t): i64 [B, L] -> logits f32 [B, L, V].
  fn logits(x) {
    let pos = arange(dim(x, 1))
    let h = embed(x)
    for i in 0..layers {
      let h = blocks[i](h, pos)
    }
    return lm_head(norm(h))
  }

  // The logits with [M] excluded (a clean token is never [M]); used by both samplers.
  fn no_mask_logits(x) = where(arange(V) == mask_id, -inf, logits(x))

  // MDLM's SUBS parameterisation of log p_θ(x_0 | x_t): [M] gets probability 0, and an unmasked
  // position keeps its token with probability 1 ("carry-over"). -> [B, L, V]
  fn subs_log_probs(x) {
    let lp = log_softmax(no_mask_logits(x), axis = -1)
    let keep = where(one_hot(x, V, bool), 0.0, -inf)
    return where((x == mask_id)[:, :, None], lp, keep)
  }

  // Standard Gumbel noise -log(-log u) from Philox uniforms (u clamped away from 0).
  fn gumbel(seed, shape, offset) = -log(-log(maximum(rand(seed, shape, offset), 1e-10)))

  // ---------------------------------------------------------------- entry points

  entry denoise(tokens: i64[B, L]) -> f32[B, L, V] {
    return logits = logits(tokens)
  }

  // LLaDA `generate` with remasking = "low_confidence". Within block b, step s commits
  //   k_s = block_len / block_steps + (1 if s < block_len % block_steps else 0)
  // tokens (LLaDA's get_num_transfer_tokens: the block's masked count split evenly, the
  // remainder going to the first steps), so after the last step every position is committed.
  entry sample(prompt: i64[B, P], seed: i64[]) {
    let x0 = concat([prompt, full([B, gen_len], mask_id, i64)], axis = 1)   // [B, L]
    let pos = iota([B, P + gen_len], 1)
    loop b in 0..n_blocks carry (x = x0) {
      let block_end = P + (b + 1) * block_len                 // positions >= block_end wait
      loop s in 0..block_steps carry (x = x) {
        let k = block_len / block_steps + where(s < block_len % block_steps, 1, 0)
        let z = no_mask_logits(x)                             // [B, L, V]
        // x̂_0 = argmax(exp(z) / (-log u)^τ) = argmax(z + τ g), g ~ Gumbel (LLaDA's add_gumbel_noise)
        let noisy = if temperature == 0.0 { z } else { z + temperature * gumbel(seed, shape(z), b * block_steps + s + 1) }
        let pred = argmax(noisy, axis = -1)                   // [B, L]
        // Confidence of the prediction: softmax(z)[x̂_0]; -inf where nothing may be committed.
        let conf = gather(softmax(z, axis = -1), pred[:, :, None], 2)[:, :, 0]
        let eligible = (x == mask_id) & (pos < block_end)
        let conf = where(eligible, conf, -inf)
        // Per-row top-k with a run-time k: rank every position by confidence (full sort), keep
        // rank < k. rank[order[r]] = r.
        let (_, order) = topk(conf, P + gen_len)
        let rank = scatter(zeros_like(order), order, pos, 1)
        let commit = eligible & (rank < k)
        let x = where(commit, pred, x)
        next x = x
        emit committed = sum(cast(commit, i64), axis = 1)     // [B]; equals k_s
        emit states = x                                       // [B, L] after this step
      }
      next x = x
      emit block_committed = committed                        // [block_steps, B]
      emit block_states = states                              // [block_steps, B, L]
    }
    return tokens = x, committed = reshape(block_committed, [steps, B]),
           history = reshape(block_states, [steps, B, P + gen_len])
  }

  // MDLM `_ddpm_caching_update` loop. Timesteps t_i = 1 - i (1 - eps) / S, s = t_i - (1 - eps) / S;
  // log-linear noise: masking probability α(t) = (1 - noise_eps) t. Each step:
  //   q(x_s | x_t, x_0) ∝ p_θ(x_0 | x_t) (α(t) - α(s))  for clean tokens,  α(s) for [M]
  //   x_s = argmax(q / E) with E = -log(u) exponential noise (a categorical draw from q)
  //   tokens that are already unmasked are copied (carry-over).
  // After the last step the remaining [M] are replaced by argmax p_θ(x_0 | x) (noise removal).
  // The network is rerun every step (exact: there is no time conditioning to cache around).
  entry sample_mdlm(prompt: i64[B, P], seed: i64[]) {
    let x0 = concat([prompt, full([B, gen_len], mask_id, i64)], axis = 1)
    let dt = (1.0 - mdlm_eps) / steps
    let is_mask_col = one_hot(full([1, 1], mask_id, i64), V)           // [1, 1, V]
    loop i in 0..steps carry (x = x0) {
      let t = 1.0 - cast(i, f32) * dt
      let move_t = (1.0 - noise_eps) * t
      let move_s = (1.0 - noise_eps) * (t - dt)
      let p_x0 = exp(subs_log_probs(x))                                 // [B, L, V]
      let q = p_x0 * (move_t - move_s) + is_mask_col * move_s
      let u = rand(seed, shape(q), i + 1)
      let draw = argmax(q / (1e-10 - log(u + 1e-10)), axis = -1)
      next x = where(x == mask_id, draw, x)
    }
    let final = argmax(subs_log_probs(x), axis = -1)
    return tokens = where(x == mask_id, final, x)
  }

  // MDLM's negative ELBO (`_forward_pass_diffusion` with SUBS and the log-linear schedule) of
  // clean sequences x0 (no [M]: a masked input token has probability 0), estimated with n = elbo_samples draws per row:
  //   t_i = (1 - ε) s_i + ε,  s_i = (u_i + i) / n  with u Philox uniforms at stream offset 0
  //        (the stratified "antithetic" times of MDLM's `_sample_t`, here over the n draws);
  //   each token is masked independently with probability α(t_i) = (1 - ε) t_i (uniforms at
  //        stream offset 1, element [i, b, l]);
  //   loss_i = w(t_i) Σ_l masked_l · (−log p_θ(x_0^l | x_t)),  w = σ'(t) / expm1(σ(t)) = 1 / t
  //        for σ(t) = −log(1 − (1 − ε) t); unmasked positions cost 0 (SUBS carries them over).
  // nelbo = mean_i loss_i ≥ −log p_θ(x_0) in expectation. The n draws run as one batch of n·B.
  entry elbo(x0: i64[B, L], seed: i64[]) {
    let n = elbo_samples
    let u = rand(seed, [n, B])
    let s = (u + cast(iota([n, B], 0), f32)) / n
    let t = (1.0 - noise_eps) * s + noise_eps                          // [n, B]
    let move = (1.0 - noise_eps) * t
    let masked = rand(seed, [n, B, L], 1) < move[:, :, None]           // [n, B, L]
    let clean = expand(x0[None], [n, B, L])
    let xt = reshape(where(masked, mask_id, clean), [n * B, L])
    let lp = subs_log_probs(xt)                                        // [n B, L, V]
    let lp0 = reshape(gather(lp, reshape(clean, [n * B, L])[:, :, None], 2), [n, B, L])
    let loss = sum(where(masked, -lp0, 0.0), axis = 2) / t             // [n, B]
    return nelbo = mean(loss, axis = 0), loss, t, masked
  }
}
