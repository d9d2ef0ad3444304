// expect: 4:10 loop over `N` iterations has no static bound
model M(d: int = 4) {
  entry forward(x: f32[N, d]) {
    loop i in 0..N carry (h = x) {
      next h = h * 0.5
    }
    return h
  }
}
