// Matrix products, cumulative sums, top-k, random numbers and static queries.
model Other(k: int = 2) {
  entry forward(x: f32[B, N], w: f32[N, M], seed: i64[]) {
    let y = matmul(x, w)                           // the same as x @ w
    let c = cumsum(x, 1)                           // running sum along axis 1
    let ce = cumsum(x, 1, exclusive = true, reverse = true)
    let (top, at) = topk(x, k)                     // [B, k] values (largest first) and i64 indices
    let (low, _) = topk(x, k, largest = false)
    let u = rand(seed, [B, 3])                     // uniform [0, 1) from the Philox stream
    let u2 = rand(seed, [B, 3], offset = 1)        // another offset: an independent stream
    let info = [rank(x), dim(x, 1), len(x)]        // static: 2, N, B
    let is_f32 = dtype(x) == f32                   // static: true
    let n = float(k) * 0.5 + float(int(2.7))       // static conversions: 1.0 + 2.0
    return y, c, ce, top, at, low, u, u2, n = n, flag = is_f32, size = info[1]
  }
}
