// Indexing and slicing of tensors and lists.
model Indexing(d: int = 4) {
  entry forward(x: f32[B, T, d], idx: i64[K], rows: i64[B, K]) {
    let first = x[0]                  // [T, d]: a static integer drops the axis
    let last_t = x[:, -1]             // [B, d]: negative indices count from the end
    let tail = x[:, 1:]               // [B, T - 1, d]
    let window = x[:, 1:3]            // [B, 2, d]; needs T >= 3 at run time
    let evens = x[..., ::2]           // [B, T, 2]: `...` stands for as many `:` as needed;
                                      // a step needs an axis of static length
    let lifted = x[:, None, :, :]     // [B, 1, T, d]: `None` inserts an axis of size 1
    let picked = x[:, idx]            // [B, K, d]: an integer tensor takes along the axis
    let per_row = gather(x, expand(rows[:, :, None], [B, K, d]), 1)   // x[b, rows[b, k], j]
    let dims = shape(x)               // a static list [B, T, 4]
    let t = dims[1]                   // lists index statically; t is the dim T
    return first, last_t, tail, window, evens, lifted, picked, per_row, t = t
  }
}
