// expect: 2:30 `tests/diagnostics/helpers/layers.dsl` has no item named `Linaer`
import "helpers/layers.dsl".{Linaer}

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
