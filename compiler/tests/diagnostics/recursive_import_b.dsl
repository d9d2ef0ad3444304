// expect: TODO
import "recursive_import_a.dsl"

fn b(x) = x
