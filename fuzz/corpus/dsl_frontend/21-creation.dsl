// Creating tensors.
model Creation {
  entry forward(x: f32[B, D]) {
    let z = zeros([B, D])                      // f32 by default
    let o = ones([3], i64)
    let f = full([B, 2], 0.5)                  // dtype from the value (f32 for floats, i64 for ints)
    let fb = full([2], true)                   // bool
    let zl = zeros_like(x) + ones_like(x) + full_like(x, 2.0)
    let rows = iota([B, D], 0)                 // i64: 0, 1, 2, ... along axis 0
    let cols = iota([B, D], 1, dtype = f32)
    let r = arange(D)                          // i64 [D]: 0 .. D - 1
    let m = tensor([[1.0, 0.0], [0.0, 1.0]])   // a literal: f32 [2, 2]
    let i = tensor([1, 2, 3])                  // i64 [3]
    let h = tensor([0.5, 1.5], dtype = f16)
    return z, o, f, fb, zl, rows, cols, r, m, i, h
  }
}
