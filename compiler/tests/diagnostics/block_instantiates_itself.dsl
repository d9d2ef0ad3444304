// expect: 3:3 block `Tree` instantiates itself
block Tree(d: int) {
  left = Tree(d)
  fn forward(x) = left(x)
}

model M(d: int = 4) {
  root = Tree(d)
  entry forward(x: f32[B, d]) {
    return root(x)
  }
}
