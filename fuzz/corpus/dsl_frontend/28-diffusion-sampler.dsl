// A DDPM-style sampler: a denoiser conditioned on the timestep, run for a fixed number of steps
// with fresh Gaussian noise in every step (the loop index is the random stream's offset).
import std.nn.{Linear, TimestepEmbedder}
import std.math.{silu, randn}

block Denoiser(d: int) {
  time = TimestepEmbedder(d, freq_dim = 32)
  fc1 = Linear(d, 4 * d)
  fc2 = Linear(4 * d, d)
  fn forward(x, t, cond) = fc2(silu(fc1(x + time(t) + cond)))   // predicts the noise in x
}

model Sampler(d: int = 8, steps: int = 10) {
  net = Denoiser(d)

  entry sample(seed: i64[], cond: f32[B, d]) {             // B is bound by `cond`
    let beta = 0.02
    loop i in 0..steps carry (x = randn(seed, [B, d])) {
      let t = full([B], float(steps - 1)) - cast(i, f32)  // steps - 1, ..., 0
      let eps = net(x, t, cond)
      let mean = (x - beta / sqrt(1.0 - beta) * eps) / sqrt(1.0 - beta)
      let noise = randn(seed, [B, d], offset = i + 1)    // offset 0 drew the starting point
      next x = where(i + 1 < steps, mean + sqrt(beta) * noise, mean)
      emit trajectory = x                                // x at the start of each step
    }
    return x, trajectory
  }
}
