// Indexing built-ins: gather, take, scatter, dynamic slices, one_hot.
model Gathering(vocab: int = 5) {
  entry forward(x: f32[B, N], idx: i64[B, K], table: f32[V, D], ids: i64[B, T], pos: i64[]) {
    let g = gather(x, idx, 1)                      // g[b, k] = x[b, idx[b, k]]: index has x's rank
    let rows = take(table, ids)                    // rows[b, t, :] = table[ids[b, t], :]
    let cols = take(x, idx[0], axis = 1)           // [B, K]: any index shape
    let marked = scatter(zeros([B, N]), idx, 1.0, 1)   // out[b, idx[b, k]] = 1; src may be a scalar
    let moved = scatter(x, idx, g * 2.0, 1)        // or a tensor shaped like the index
    let window = dynamic_slice(x, pos, 2, 1)       // x[:, pos:pos + 2]; start clamped to [0, N - 2]
    let written = dynamic_update_slice(x, zeros([B, 1]), pos, 1)   // x with column `pos` zeroed
    let hot = one_hot(ids, vocab)                  // f32 [B, T, vocab]
    let hot_i = one_hot(ids, vocab, dtype = i64)
    return g, rows, cols, marked, moved, window, written, hot, hot_i
  }
}
