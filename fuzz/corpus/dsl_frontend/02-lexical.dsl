// Lexical structure: comments, literals, names and optional semicolons.

/* A block comment
   may span lines. */
model Lexical {
  entry forward(x: f32[N]) {
    let i = 42                 // an int
    let f = 2.5e-3             // a float: digits, then a fraction and/or an exponent
    let g = 1e6                // also a float
    let yes = true & !false    // bools
    let nothing = None         // the absent value
    let big = inf              // built-in constants: inf, nan, pi
    let _scratch = pi;         // `;` after a statement is optional
    return y = x * f + float(i) * g, flag = yes, limit = minimum(x, big)
  }
}
