// expect: 3:24 result 0 of `twice` has type f32[S], but it is declared i64
// A function's declared result type is checked where it returns.
fn twice(x) -> i64[] = x * 2
model M {
  entry g(a: f32[S]) { return twice(a) }
}
