// Statements: `let` with patterns and shadowing, static `if` and `for`, `return`.
model Statements(n: int = 3, residual: bool = true) {
  entry forward(x: f32[B, D]) {
    let y = x * 2.0
    let y = y + 1.0                     // shadows the previous `y`
    let (a, (b, _)) = (y, (x, 0))       // nested tuple patterns, `_` ignores
    let total = zeros([B, D])
    for i in 0..n {                     // unrolled at compile time; i is a static int
      let total = total + a * float(i) // bindings made inside stay visible after the loop
    }
    let powers = [1, 2] + [4]           // static lists; `+` concatenates them
    for k in 0..len(powers) {
      let b = b + pow(x, float(powers[k]))
    }
    if residual {                       // a static condition: only the chosen branch is
      let b = b + x                     // compiled, and its bindings stay visible after it
    } else if n > 2 {
      let b = -b
    }
    if n == 0 {
      return total = zeros([B, D]), b = b   // a `return` in a static `if` ends the entry early
    }
    return total = total, b = b
  }
}
