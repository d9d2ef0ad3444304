// expect: 2:12 unknown standard library module `std.layers`
import std.layers
import "no_such_helper.dsl"
import "helpers/layers.dsl".{Linear, Conv2d}

model M(d: int = 4) {
  entry forward(x: f32[B, d]) {
    return x
  }
}
// also: 3:1 cannot find imported file `no_such_helper.dsl`
// also: 4:38 `tests/diagnostics/helpers/layers.dsl` has no item named `Conv2d`
