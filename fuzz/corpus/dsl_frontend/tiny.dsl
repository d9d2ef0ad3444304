// A tiny model that exercises most of the language.
block Linear(inp: int, out: int, has_bias: bool = true) {
  param weight: f32[out, inp]
  param bias: f32[out] = zeros if has_bias
  fn forward(x) {
    let y = x @ transpose(weight)
    return if has_bias { y + bias } else { y }
  }
}

fn relu(x) = maximum(x, 0.0)

model Tiny(d: int = 8, layers: int = 2) {
  let hidden = d * 2
  inp = Linear(d, hidden)
  blocks = repeat(layers) Linear(hidden, hidden, has_bias = false)
  out = Linear(hidden, 3)

  entry forward(x: f32[B, T, d]) -> f32[B, T, 3] {
    let h = relu(inp(x))
    for i in 0..layers {
      let h = h + relu(blocks[i](h))
    }
    return out(h)
  }

  entry count(x: f32[B, d]) {
    loop step in 0..5 carry (acc = zeros([B, d]), n = 0) until all(n >= 3) {
      next acc = acc + x, n = n + 1
      emit trace = sum(acc, axis = -1)
    }
    return acc, n, trace
  }
}
