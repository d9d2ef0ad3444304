// expect: 5:16 `next h` has type f32[B], but `h` is carried as f32[B, 4]
model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    loop i in 0..3 carry (h = x) {
      next h = sum(h, axis = -1)
    }
    return h
  }
}
