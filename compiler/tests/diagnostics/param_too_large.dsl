// expect: 3:9 parameter `table` of shape [4294967296, 4294967296] is too large
model M(d: int = 4, vocab: int = 4294967296) {
  param table: f32[vocab, vocab]
  entry forward(x: f32[B, d]) {
    return x
  }
}
