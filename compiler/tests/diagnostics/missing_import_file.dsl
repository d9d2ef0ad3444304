// expect: 2:1 cannot find imported file `does_not_exist.dsl`
import "does_not_exist.dsl"

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
