// Broadcasting and dtypes: shapes align on the right and size-1 axes stretch; dtypes must match
// exactly (cast explicitly); static numbers adopt the tensor's dtype.
model Broadcast {
  entry forward(x: f32[B, T, D], bias: f32[D], scale: f32[B, 1, 1], ids: i64[B, T], h: f16[D]) {
    let y = x * scale + bias                  // [B, T, D]
    let col = sum(x, axis = -1, keepdim = true)   // [B, T, 1]
    let z = x - col                           // [B, T, D]
    let n = cast(ids, f32) / 2.0              // i64 -> f32 before mixing with floats
    let k = ids * 2 + 1                       // ints with ints: i64 arithmetic
    let q = ids / 2                           // integer division floors, as in Python
    let w = cast(h, f32) + bias               // f16 -> f32
    let m = x > 0.0                           // comparisons give bool
    let counts = sum(cast(m, i64), axis = -1) // bools count after a cast
    return y, z, n, k, q, w, counts
  }
}
