// Reductions: one axis, several axes, or all; `keepdim` keeps size-1 axes.
model Reductions {
  entry forward(x: f32[B, T, D], m: bool[B, T]) {
    let total = sum(x)                          // f32[]: all axes
    let per_row = sum(x, axis = -1)             // [B, T]
    let pooled = mean(x, axis = [1, 2])         // [B]
    let peak = max(x, axis = 1, keepdim = true) // [B, 1, D]
    let low = min(x, axis = 0)                  // [T, D]
    let p = prod(x, axis = -1)                  // [B, T]
    let some = any(m, axis = -1)                // bool [B]
    let every = all(m)                          // bool []
    let where_max = argmax(x)                   // i64 [B, T]: the last axis by default
    let where_min = argmin(x, axis = 0, keepdim = true)   // i64 [1, T, D]
    return total, per_row, pooled, peak, low, p, some, every, where_max, where_min
  }
}
