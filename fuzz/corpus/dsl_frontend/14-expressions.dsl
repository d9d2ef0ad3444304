// Operators and precedence; static values compute at compile time, tensors become graph ops.
model Expressions(d: int = 4, heads: int = 2) {
  entry forward(x: f32[B, d], y: f32[B, d], w: f32[d, d], flags: bool[B, d]) {
    // static arithmetic: ints stay ints (`/` floors), mixed with floats gives floats
    let dh = d / heads                         // 2
    let r = 7 % 3 + 2 ** 3                     // 1 + 8 = 9
    let half = d / 2.0                         // 2.0
    let neg = -7 / 2                           // -4 (floor)

    // tensor arithmetic: + - * / % ** with broadcasting, @ for matrix products
    let a = x * 2.0 + y / 4.0 - 1.0            // scalars take the tensor's dtype
    let b = -x ** 2                            // ** binds tighter than unary minus: -(x ** 2)
    let c = x @ w + (y @ w) * float(r)         // [B, d] @ [d, d]
    let v = x @ y[0]                           // rank-1 right operand: a matrix-vector product

    // comparisons give bool tensors; & | ! combine them
    let m = (x > 0.0) & !flags | (y <= x)
    // `if` chooses at compile time, on static conditions only
    let e = if dh > 1 { a } else { b }
    // `where` chooses per element at run time
    let f = where(m, x, y)
    return a, b, c, v, e, f, n = neg + dh, h = half
  }
}
