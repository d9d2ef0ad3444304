// Shape built-ins.
model Shapes(d: int = 4, heads: int = 2) {
  entry forward(x: f32[B, T, d], y: f32[B, T, d]) {
    let (b, t, n) = shape(x)                        // unpack the shape: B, T, 4
    let split = reshape(x, [b, t, heads, -1])       // one -1 takes the remaining size
    let heads_first = permute(split, [0, 2, 1, 3])  // [B, heads, T, d / heads]
    let xt = transpose(x)                           // swaps the last two axes: [B, d, T]
    let bt = transpose(x, 0, 1)                     // [T, B, d]
    let wide = expand(x[:, :, None, :], [B, T, 3, d])
    let flat = flatten(x, 1)                        // [B, T * d]
    let middle = flatten(wide, 1, 2)                // [B, T * 3, d]
    let back = squeeze(unsqueeze(x, 0), 0)          // unsqueeze adds, squeeze removes size 1
    let cat = concat([x, y], axis = -1)             // [B, T, 2 * d]
    let st = stack([x, y], axis = 1)                // [B, 2, T, d]
    let padded = pad(x, 1, 2, 0, value = -1.0)      // [B, T + 2, d]: 2 rows of -1 before
    let part = slice(x, -1, 0, n / heads)           // the first d / heads features
    let every_other = slice(x, 2, 0, n, step = 2)   // a step over a static-length axis
    return split, heads_first, xt, bt, flat, middle, back, cat, st, padded, part, every_other,
           r = rank(x), count = len(x), size = dim(x, -1)
  }
}
