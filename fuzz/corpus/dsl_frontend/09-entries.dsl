// Entry points: typed inputs with symbolic dims, dim expressions, named results, declared
// result types, several entries in one model.
import std.nn.{Embedding, Linear}

model Entries(vocab: int = 10, d: int = 8) {
  emb = Embedding(vocab, d)
  out = Linear(d, vocab)

  // B and T are new names, so they become symbolic dims bound from the inputs at run time;
  // `d` is the hyperparameter. `mask` must agree with `tokens` on B and T.
  entry forward(tokens: i64[B, T], mask: bool[B, T]) -> (f32[B, T, vocab], f32[B]) {
    let h = emb(tokens)
    let count = sum(cast(mask, f32), axis = -1)
    return logits = out(h), count = count
  }

  // A scalar input has the type `dtype[]`. A dim may be an expression of dims named by
  // earlier inputs (here T, bound by `prev`).
  entry shifted(prev: f32[B, T, d], x: f32[B, T + 1, d], scale: f32[]) {
    let target = x[:, 1:]        // [B, T, d]: the length T + 1 - 1 simplifies to T
    return err = mean((prev - target) * scale, axis = [1, 2]), length = T
  }
}
