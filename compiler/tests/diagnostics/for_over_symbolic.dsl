// expect: 5:14 a `for` range must be static integers
model M(d: int = 4) {
  entry forward(x: f32[N, d]) {
    let h = x
    for i in 0..N {
      let h = h * 0.5
    }
    return h
  }
}
