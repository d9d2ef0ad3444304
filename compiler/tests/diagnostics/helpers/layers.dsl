// A well-formed helper that corpus files import (not itself part of the corpus).
block Linear(inp: int, out: int) {
  param weight: f32[out, inp]
  fn forward(x) = x @ transpose(weight)
}

fn double(x) = x * 2.0
