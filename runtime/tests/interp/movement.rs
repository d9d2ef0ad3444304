use mlc_ir::{DType, Dim, Op};
use mlc_runtime::Tensor;

use crate::common::*;

fn one(op: Op, dims: &[&str], x: Tensor) -> Tensor {
    let mut g = G::new();
    let a = g.input("x", x.dtype(), dims);
    let r = g.op(op, &[a]);
    g.out("y", r);
    run1(g, vec![("x", x)])
}

fn m23() -> Tensor {
    f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
}

#[test]
fn reshape_keeps_row_major_order() {
    let y = one(Op::Reshape(sh(&["3", "2"])), &["2", "3"], m23());
    assert_eq!(
        (y.shape(), y.as_f32().unwrap()),
        (&[3, 2][..], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..])
    );
}

#[test]
fn permute_transposes() {
    let y = one(Op::Permute(vec![1, 0]), &["2", "3"], m23());
    assert_eq!(
        (y.shape(), y.as_f32().unwrap()),
        (&[3, 2][..], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0][..])
    );
    let x = i64s(&[2, 1, 2], &[1, 2, 3, 4]);
    let y = one(Op::Permute(vec![2, 0, 1]), &["2", "1", "2"], x);
    assert_eq!((y.shape(), y.as_i64().unwrap()), (&[2, 2, 1][..], &[1, 3, 2, 4][..]));
}

#[test]
fn expand_repeats_size_one_axes() {
    let y = one(Op::Expand(sh(&["2", "3"])), &["3"], f32s(&[3], &[1.0, 2.0, 3.0]));
    assert_eq!(y.as_f32().unwrap(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    let y = one(Op::Expand(sh(&["2", "3"])), &["2", "1"], f32s(&[2, 1], &[7.0, 8.0]));
    assert_eq!(y.as_f32().unwrap(), &[7.0, 7.0, 7.0, 8.0, 8.0, 8.0]);
}

#[test]
fn slice_with_step() {
    let x = i64s(&[2, 5], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let op = Op::Slice {
        axis: 1,
        start: Dim::c(1),
        end: Dim::c(5),
        step: 2,
    };
    let y = one(op, &["2", "5"], x);
    assert_eq!((y.shape(), y.as_i64().unwrap()), (&[2, 2][..], &[1, 3, 6, 8][..]));
}

#[test]
fn symbolic_slice_out_of_range_is_an_error() {
    // x[0..N] on an axis of 3 where N is bound to 5 by another input.
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["3"]);
    let _n = g.input("n", DType::F32, &["N"]);
    let op = Op::Slice {
        axis: 0,
        start: Dim::c(0),
        end: Dim::sym("N"),
        step: 1,
    };
    let y = g.g.add_typed(op, &[x], vec![ty(DType::F32, &["N"])], at("s", ""));
    g.out("y", mlc_ir::Value::of(y));
    let err = run_graph(g, vec![("x", f32s(&[3], &[0.0; 3])), ("n", f32s(&[5], &[0.0; 5]))]).unwrap_err();
    assert!(err.to_string().contains("`slice` at `s`: range 0..5"), "{err}");
}

#[test]
fn concat_along_each_axis() {
    let mut g = G::new();
    let a = g.input("a", DType::F32, &["2", "1"]);
    let b = g.input("b", DType::F32, &["2", "2"]);
    let r = g.op(Op::Concat { axis: 1 }, &[a, b]);
    g.out("y", r);
    let y = run1(
        g,
        vec![
            ("a", f32s(&[2, 1], &[1.0, 2.0])),
            ("b", f32s(&[2, 2], &[3.0, 4.0, 5.0, 6.0])),
        ],
    );
    assert_eq!(
        (y.shape(), y.as_f32().unwrap()),
        (&[2, 3][..], &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0][..])
    );

    let mut g = G::new();
    let a = g.input("a", DType::I64, &["1", "2"]);
    let b = g.input("b", DType::I64, &["2", "2"]);
    let r = g.op(Op::Concat { axis: 0 }, &[a, b, a]);
    g.out("y", r);
    let y = run1(
        g,
        vec![("a", i64s(&[1, 2], &[1, 2])), ("b", i64s(&[2, 2], &[3, 4, 5, 6]))],
    );
    assert_eq!(
        (y.shape(), y.as_i64().unwrap()),
        (&[4, 2][..], &[1, 2, 3, 4, 5, 6, 1, 2][..])
    );
}

#[test]
fn pad_fills_both_sides() {
    let op = Op::Pad {
        axis: 1,
        before: 1,
        after: 2,
        value: 9.0,
    };
    let y = one(op, &["2", "2"], i64s(&[2, 2], &[1, 2, 3, 4]));
    assert_eq!(y.shape(), &[2, 5]);
    assert_eq!(y.as_i64().unwrap(), &[9, 1, 2, 9, 9, 9, 3, 4, 9, 9]);
}
