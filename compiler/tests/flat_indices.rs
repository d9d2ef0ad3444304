//! Index arithmetic: a kernel that reads a slice of a row-major buffer (a layer of a stacked
//! cache, a leading axis of size 1) splits its flat index into a multi-index and flattens that
//! into the buffer's layout again. That must simplify back to the flat index plus an offset,
//! with no division or remainder left (each costs tens of cycles per row on x86: such copies
//! were a fifth of SmolLM2's decoding time), and the CPU backend must still compute the
//! interpreter's values.

use mlc_ir::{IExpr, Step, print_kernel};
use mlc_runtime::init_inputs;

mod common;
use common::{assert_sessions_agree, bind, compile, cpu_sessions};

const SRC: &str = r#"
model Slices {
  entry layer(past: f32[L, B, H, P, 8]) {
    return y = past[1] * 2.0
  }
  entry unit(x: f32[1, B, H, 8]) {
    return y = x * 3.0
  }
}
"#;

#[test]
fn slices_of_row_major_buffers_read_plain_offsets() {
    let m = compile("slices.dsl", SRC);
    let plan = mlc_sched::plan_module(&m).expect("plans");
    for entry in ["layer", "unit"] {
        let f = plan.function(entry).expect("entry");
        let kernels: Vec<String> = f
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Kernel { kernel, .. } => Some(print_kernel(&plan.kernels[*kernel as usize])),
                _ => None,
            })
            .collect();
        assert_eq!(kernels.len(), 1, "{entry}: {kernels:?}");
        let k = &kernels[0];
        assert!(
            !k.contains(" / ") && !k.contains(" % "),
            "{entry}: an index divides:\n{k}"
        );
    }
    // And the values are the interpreter's.
    let (weights, mut sessions) = cpu_sessions(&m, 1);
    for (entry, dims) in [
        ("layer", &[("L", 3), ("B", 2), ("H", 3), ("P", 5)][..]),
        ("unit", &[("B", 2), ("H", 3)][..]),
    ] {
        let inputs = init_inputs(m.function(entry).expect("entry"), &bind(dims), 2).expect("inputs");
        assert_sessions_agree(&m, &weights, &mut sessions, entry, &inputs, 0.0, entry);
    }
}

/// The rewrite itself: `(a + x / n) * n + x % n` is `a * n + x`, and `(x / n) * n + x % n` is
/// `x`, for every non-negative `x` (checked by evaluation as well as by form).
#[test]
fn a_split_index_flattened_again_is_the_flat_index() {
    let (x, n, a) = (IExpr::Var(0), IExpr::Dim(0), IExpr::Dim(1));
    let split = (x.clone() / n.clone()) * n.clone() + x.clone() % n.clone();
    assert_eq!(split, x);
    let offset = (a.clone() + x.clone() / n.clone()) * n.clone() + x.clone() % n.clone();
    assert_eq!(offset, a.clone() * n.clone() + x.clone());
    // Two levels, as a three-axis layout gives: ((a + x / (3 n)) * 3 + x / n % 3) * n + x % n.
    let three = IExpr::Const(3);
    let q = x.clone() / n.clone();
    let nested = ((a.clone() + q.clone() / three.clone()) * three.clone() + q % three.clone()) * n.clone()
        + x.clone() % n.clone();
    assert_eq!(nested, (a.clone() * three * n.clone()) + x.clone());
    for xv in 0..40 {
        for nv in 1..7 {
            let env = |d: u32| if d == 0 { nv } else { 11 };
            let want = 11 * 3 * nv + xv;
            assert_eq!(nested.eval(&|_| xv, &env), want, "x = {xv}, n = {nv}");
        }
    }
}
