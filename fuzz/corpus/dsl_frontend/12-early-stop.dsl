// Loops that stop early: `max` alone bounds the loop, `until` stops it, per-row `done` flags.
import std.nn.{Embedding, Linear}

model Decoder(vocab: int = 6, d: int = 8, eos: int = 0) {
  emb = Embedding(vocab, d)
  out = Linear(d, vocab)

  // Greedy decoding of up to 16 tokens per row from a start token. A row is done once it has
  // produced `eos`; its later tokens are forced to `eos`. The loop stops when every row is done.
  entry greedy(start: i64[B], h0: f32[B, d]) {
    loop step max 16 carry (tok = start, h = h0, done = zeros([B], bool)) until all(done) {
      let h2 = tanh(h + emb(tok))
      let best = argmax(out(h2), axis = -1)                // i64[B]
      let tok2 = where(done, eos, best)                    // finished rows keep emitting eos
      next tok = tok2, h = where(done[:, None], h, h2), done = done | (tok2 == eos)
      emit tokens = tok2                                   // [16, B]; rows after the stop are 0
    }
    // After the loop the carried names hold their final values.
    return tokens = transpose(tokens, 0, 1), finished = done, last = tok
  }
}
