// expect: 2:8 unterminated string
import "layers.dsl

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
