// expect: TODO
import "recursive_import_b.dsl"

fn a(x) = x
