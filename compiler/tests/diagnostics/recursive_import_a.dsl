// expect: 2:1 recursive import: tests/diagnostics/recursive_import_a.dsl ->
import "recursive_import_b.dsl"

fn a(x) = x
