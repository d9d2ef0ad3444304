// expect: TODO
import "does_not_exist.dsl"

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
