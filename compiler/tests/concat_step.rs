//! `concat` steps on the CPU backend copy their inputs straight into the output's arena place:
//! every axis, inputs that are entry inputs, kernel results and other concatenations, integer
//! and boolean dtypes, empty inputs; the values are exactly the interpreter's at 1 and 2
//! threads.

use mlc_ir::{Op, Step};
use mlc_runtime::init_inputs;

mod common;
use common::{assert_sessions_agree, bind, compile, cpu_sessions};

const SRC: &str = r#"
model Concats {
  entry floats(a: f32[B, P, 4], b: f32[B, N, 4]) {
    let c = concat([a, b * 2.0], axis = 1)
    let d = concat([c, c + 1.0], axis = 0)
    let e = concat([d, d], axis = 2)
    return y = e * 3.0, z = concat([a, a], axis = 1)
  }
  entry ints(a: i64[B, P], m: bool[B, P]) {
    let c = concat([a, a + 1], axis = 1)
    let k = concat([m, m], axis = 0)
    return y = c * 2, z = where(k, 1, 0)
  }
}
"#;

#[test]
fn concat_steps_give_the_interpreters_values() {
    let m = compile("concats.dsl", SRC);
    let plan = mlc_sched::plan_module(&m).expect("plans");
    let concats = |entry: &str| {
        let f = plan.function(entry).expect("entry");
        f.steps
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    Step::Op {
                        op: Op::Concat { .. },
                        ..
                    }
                )
            })
            .count()
    };
    // The steps under test exist (the scheduler did not turn them into something else).
    assert!(concats("floats") >= 3, "{}", mlc_ir::print_plan(&plan));
    assert!(concats("ints") >= 1, "{}", mlc_ir::print_plan(&plan));
    let (weights, mut sessions) = cpu_sessions(&m, 1);
    for (entry, dims) in [
        ("floats", &[("B", 2), ("P", 3), ("N", 2)][..]),
        ("floats", &[("B", 1), ("P", 0), ("N", 5)][..]),
        ("ints", &[("B", 3), ("P", 4)][..]),
    ] {
        let inputs = init_inputs(m.function(entry).expect("entry"), &bind(dims), 4).expect("inputs");
        let what = format!("{entry} {dims:?}");
        assert_sessions_agree(&m, &weights, &mut sessions, entry, &inputs, 0.0, &what);
    }
}
