// expect: 4:4 `act` is defined twice in this file
fn act(x) = tanh(x)

fn act(x) = sigmoid(x)

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return act(x)
  }
}
