// The layers of std.nn in a pre-norm transformer MLP block and an LSTM encoder.
import std.nn

block MlpBlock(d: int, hidden: int, gated: bool = false) {
  norm = RMSNorm(d) if gated
  ln = LayerNorm(d) if !gated
  swiglu = SwiGLU(d, hidden) if gated
  mlp = GeluMLP(d, hidden, tanh_approx = true) if !gated

  fn forward(x) = if gated { x + swiglu(norm(x)) } else { x + mlp(ln(x)) }
}

model NnDemo(vocab: int = 11, d: int = 8) {
  emb = Embedding(vocab, d)
  gpt = MlpBlock(d, 4 * d)
  llama = MlpBlock(d, 3 * d, gated = true)
  cell = LSTMCell(d, d)
  time = TimestepEmbedder(d, freq_dim = 16)
  head = Linear(d, vocab, has_bias = false)

  entry forward(tokens: i64[B, T], t: f32[B]) {
    let h = llama(gpt(emb(tokens))) + time(t)[:, None, :]
    // An LSTM over the sequence, written as a loop over time.
    loop i in 0..T max 1024 carry (hs = zeros([B, d]), cs = zeros([B, d])) {
      let x = h[:, i]                             // [B, d] at time i
      let (h2, c2) = cell(x, hs, cs)
      next hs = h2, cs = c2
    }
    let normed = layer_norm(hs, None, None) + rms_norm(hs, None)
    return logits = head(normed), sinusoid = timestep_embedding(t, 6)
  }
}
