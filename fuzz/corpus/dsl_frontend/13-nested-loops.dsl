// Nested loops: the inner loop sees the outer loop's index and carried values.
model Nested {
  // table[i, j] = x * (sum of i' * j' over the pairs visited so far), with two loops.
  entry forward(x: f32[N]) {
    loop i in 0..3 carry (acc = zeros([N])) {
      loop j in 0..4 carry (inner = acc) {                 // starts from the outer carried value
        let updated = inner + x * cast(i * j, f32)         // i and j are i64[] tensors
        next inner = updated
        emit row = updated                                 // [4, N] per outer iteration
      }
      next acc = inner
      emit table = row                                    // [3, 4, N]
    }
    return acc, table
  }
}
