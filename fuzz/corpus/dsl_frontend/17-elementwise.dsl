// Elementwise built-ins.
model Elementwise {
  entry forward(x: f32[N], y: f32[N], i: i64[N], b: bool[N]) {
    let unary = [neg(x), abs(x), exp(x), log(abs(x) + 1.0), sqrt(abs(x)), rsqrt(abs(x) + 1.0),
                 recip(x + 3.0), tanh(x), sigmoid(x), erf(x), sin(x), cos(x), sign(x)]
    let rounding = [floor(x), ceil(x), round(x)]       // round: half to even
    let binary = [maximum(x, y), minimum(x, 0.0), pow(abs(x), y), x % 1.0]
    let choose = where(b, x, -inf)                     // per element; operands broadcast
    let flip = not(b)                                  // the same as !b
    let as_int = cast(floor(x * 10.0), i32)            // conversions between any dtypes
    let static_value = exp(1.0)                        // on static numbers: computed now
    return u = stack(unary), r = stack(rounding), bi = stack(binary), choose, flip, as_int,
           e = static_value, ia = abs(i)
  }
}
