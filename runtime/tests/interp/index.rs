use mlc_ir::{DType, Dim, Op};
use mlc_runtime::{RuntimeError, Tensor};

use crate::common::*;

fn two(op: Op, x: (&[&str], Tensor), i: (&[&str], Tensor)) -> Result<Tensor, RuntimeError> {
    let mut g = G::new();
    let a = g.input("x", x.1.dtype(), x.0);
    let b = g.input("i", i.1.dtype(), i.0);
    let r = g.op_at(op, &[a, b], at("pick", "m.dsl:7:3"));
    g.out("y", r);
    run_graph(g, vec![("x", x.1), ("i", i.1)]).map(|mut v| v.remove(0))
}

fn m23() -> Tensor {
    f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
}

#[test]
fn gather_takes_along_axis() {
    let idx = i64s(&[2, 2], &[2, 0, 1, 1]);
    let y = two(Op::Gather { axis: 1 }, (&["2", "3"], m23()), (&["2", "2"], idx)).unwrap();
    assert_eq!(
        (y.shape(), y.as_f32().unwrap()),
        (&[2, 2][..], &[3.0, 1.0, 5.0, 5.0][..])
    );
    let idx = Tensor::from_i32(&[1, 3], vec![1, 0, 1]);
    let y = two(Op::Gather { axis: 0 }, (&["2", "3"], m23()), (&["1", "3"], idx)).unwrap();
    assert_eq!(y.as_f32().unwrap(), &[4.0, 2.0, 6.0]);
}

#[test]
fn gather_out_of_range_names_op_origin_index_and_size() {
    let idx = i64s(&[2, 1], &[0, 3]);
    let err = two(Op::Gather { axis: 1 }, (&["2", "3"], m23()), (&["2", "1"], idx)).unwrap_err();
    assert!(matches!(
        err,
        RuntimeError::IndexOutOfRange {
            index: 3,
            axis: 1,
            size: 3,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "`gather` at `pick @ m.dsl:7:3`: index 3 is out of range for axis 1 of size 3"
    );
    let idx = i64s(&[2, 1], &[-1, 0]);
    let err = two(Op::Gather { axis: 1 }, (&["2", "3"], m23()), (&["2", "1"], idx)).unwrap_err();
    assert!(err.to_string().contains("index -1"), "{err}");
}

#[test]
fn take_selects_rows() {
    let x = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = two(
        Op::Take { axis: 0 },
        (&["3", "2"], x.clone()),
        (&["2"], i64s(&[2], &[2, 0])),
    )
    .unwrap();
    assert_eq!(
        (y.shape(), y.as_f32().unwrap()),
        (&[2, 2][..], &[5.0, 6.0, 1.0, 2.0][..])
    );
    let idx = i64s(&[2, 2], &[1, 1, 0, 1]);
    let y = two(Op::Take { axis: 1 }, (&["3", "2"], x.clone()), (&["2", "2"], idx)).unwrap();
    assert_eq!(y.shape(), &[3, 2, 2]);
    assert_eq!(
        y.as_f32().unwrap(),
        &[2.0, 2.0, 1.0, 2.0, 4.0, 4.0, 3.0, 4.0, 6.0, 6.0, 5.0, 6.0]
    );
    let err = two(Op::Take { axis: 0 }, (&["3", "2"], x), (&["1"], i64s(&[1], &[3]))).unwrap_err();
    assert!(
        err.to_string().starts_with("`take` at `pick @ m.dsl:7:3`: index 3"),
        "{err}"
    );
}

fn scatter(x: Tensor, idx: Tensor, src: Tensor, xs: &[&str], is: &[&str]) -> Result<Tensor, RuntimeError> {
    let mut g = G::new();
    let a = g.input("x", x.dtype(), xs);
    let b = g.input("i", idx.dtype(), is);
    let c = g.input("s", src.dtype(), is);
    let r = g.op_at(Op::Scatter { axis: 1 }, &[a, b, c], at("seen", ""));
    g.out("y", r);
    run_graph(g, vec![("x", x), ("i", idx), ("s", src)]).map(|mut v| v.remove(0))
}

#[test]
fn scatter_writes_and_later_writes_win() {
    let y = scatter(
        Tensor::zeros(DType::Bool, &[2, 3]),
        i64s(&[2, 1], &[2, 0]),
        bools(&[2, 1], &[true, true]),
        &["2", "3"],
        &["2", "1"],
    )
    .unwrap();
    assert_eq!(y.as_bool().unwrap(), &[false, false, true, true, false, false]);
    let y = scatter(
        i64s(&[1, 3], &[0, 0, 0]),
        i64s(&[1, 2], &[1, 1]),
        i64s(&[1, 2], &[5, 7]),
        &["1", "3"],
        &["1", "2"],
    )
    .unwrap();
    assert_eq!(y.as_i64().unwrap(), &[0, 7, 0]);
    let err = scatter(
        i64s(&[1, 3], &[0, 0, 0]),
        i64s(&[1, 1], &[9]),
        i64s(&[1, 1], &[5]),
        &["1", "3"],
        &["1", "1"],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`scatter` at `seen`: index 9 is out of range for axis 1 of size 3"
    );
}

#[test]
fn dynamic_slice_clamps_start() {
    let x = i64s(&[5], &[0, 1, 2, 3, 4]);
    let op = || Op::DynamicSlice {
        axis: 0,
        size: Dim::c(2),
    };
    let y = two(op(), (&["5"], x.clone()), (&[], Tensor::scalar_i64(4))).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[3, 4]);
    let y = two(op(), (&["5"], x.clone()), (&[], Tensor::scalar_i64(-2))).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[0, 1]);
    let y = two(op(), (&["5"], x), (&[], Tensor::scalar_i32(1))).unwrap();
    assert_eq!(y.as_i64().unwrap(), &[1, 2]);
}

#[test]
fn dynamic_update_slice_clamps_start() {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["2", "4"]);
    let u = g.input("u", DType::F32, &["2", "2"]);
    let s = g.input("s", DType::I64, &[]);
    let r = g.op(Op::DynamicUpdateSlice { axis: 1 }, &[x, u, s]);
    g.out("y", r);
    let y = run1(
        g,
        vec![
            ("x", f32s(&[2, 4], &[0.0; 8])),
            ("u", f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
            ("s", Tensor::scalar_i64(3)),
        ],
    );
    assert_eq!(y.as_f32().unwrap(), &[0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0]);
}

/// A middle axis with several outer and inner elements: each outer index gets its own window
/// (slice) or its own replaced run (update), checked against nested loops.
#[test]
fn dynamic_slice_and_update_along_a_middle_axis() {
    let (outer, n, inner, size, start) = (3usize, 5usize, 2usize, 2usize, 2usize);
    let xs: Vec<f32> = (0..outer * n * inner).map(|i| i as f32).collect();
    let us: Vec<f32> = (0..outer * size * inner).map(|i| -(i as f32) - 1.0).collect();
    let dims = |a: usize| [outer.to_string(), a.to_string(), inner.to_string()];

    let mut g = G::new();
    let d = dims(n);
    let x = g.input("x", DType::F32, &[&d[0], &d[1], &d[2]]);
    let s = g.input("s", DType::I64, &[]);
    let r = g.op(
        Op::DynamicSlice {
            axis: 1,
            size: Dim::c(size as i64),
        },
        &[x, s],
    );
    g.out("y", r);
    let y = run1(
        g,
        vec![
            ("x", f32s(&[outer, n, inner], &xs)),
            ("s", Tensor::scalar_i64(start as i64)),
        ],
    );
    let mut want = Vec::new();
    for o in 0..outer {
        for j in start..start + size {
            for i in 0..inner {
                want.push(xs[(o * n + j) * inner + i]);
            }
        }
    }
    assert_eq!(y.shape(), &[outer, size, inner]);
    assert_eq!(y.as_f32().unwrap(), want.as_slice());

    let mut g = G::new();
    let (dx, du) = (dims(n), dims(size));
    let x = g.input("x", DType::F32, &[&dx[0], &dx[1], &dx[2]]);
    let u = g.input("u", DType::F32, &[&du[0], &du[1], &du[2]]);
    let s = g.input("s", DType::I64, &[]);
    let r = g.op(Op::DynamicUpdateSlice { axis: 1 }, &[x, u, s]);
    g.out("y", r);
    let y = run1(
        g,
        vec![
            ("x", f32s(&[outer, n, inner], &xs)),
            ("u", f32s(&[outer, size, inner], &us)),
            ("s", Tensor::scalar_i64(start as i64)),
        ],
    );
    let mut want = xs.clone();
    for o in 0..outer {
        for j in 0..size {
            for i in 0..inner {
                want[(o * n + start + j) * inner + i] = us[(o * size + j) * inner + i];
            }
        }
    }
    assert_eq!(y.as_f32().unwrap(), want.as_slice());
}
