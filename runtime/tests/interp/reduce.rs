use half::f16;
use mlc_ir::{ArgOp, DType, Dim, Op, ReduceOp, Value};
use mlc_runtime::Tensor;

use crate::common::*;

fn reduce(op: ReduceOp, axes: &[usize], keepdim: bool, dims: &[&str], x: Tensor) -> Tensor {
    let mut g = G::new();
    let a = g.input("x", x.dtype(), dims);
    let r = g.op(
        Op::Reduce {
            op,
            axes: axes.to_vec(),
            keepdim,
        },
        &[a],
    );
    g.out("y", r);
    run1(g, vec![("x", x)])
}

fn m23() -> Tensor {
    f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
}

#[test]
fn sum_prod_max_min() {
    let s = reduce(ReduceOp::Sum, &[1], false, &["2", "3"], m23());
    assert_eq!((s.shape(), s.as_f32().unwrap()), (&[2][..], &[6.0, 15.0][..]));
    let s = reduce(ReduceOp::Sum, &[0], true, &["2", "3"], m23());
    assert_eq!((s.shape(), s.as_f32().unwrap()), (&[1, 3][..], &[5.0, 7.0, 9.0][..]));
    let p = reduce(ReduceOp::Prod, &[1], false, &["2", "3"], m23());
    assert_eq!(p.as_f32().unwrap(), &[6.0, 120.0]);
    let m = reduce(ReduceOp::Max, &[0, 1], false, &["2", "3"], m23());
    assert_eq!((m.shape(), m.as_f32().unwrap()), (&[][..], &[6.0][..]));
    let m = reduce(ReduceOp::Min, &[0], false, &["2", "3"], m23());
    assert_eq!(m.as_f32().unwrap(), &[1.0, 2.0, 3.0]);
    let i = reduce(
        ReduceOp::Sum,
        &[0],
        false,
        &["3"],
        Tensor::from_i32(&[3], vec![i32::MAX, 1, 1]),
    );
    assert_eq!(i.as_i32().unwrap(), &[i32::MIN + 1]);
}

#[test]
fn f16_sum_accumulates_in_wide_precision() {
    // Summing in f16 would lose the ones (2048 + 1 rounds back to 2048); f64 keeps them.
    let x = Tensor::from_f16(&[3], [2048.0, 1.0, 1.0].map(f16::from_f32).to_vec());
    let s = reduce(ReduceOp::Sum, &[0], false, &["3"], x);
    assert_eq!(s.to_f32_vec(), vec![2050.0]);
}

#[test]
fn any_all_and_empty_max() {
    let b = bools(&[2, 2], &[true, false, false, false]);
    let any = reduce(ReduceOp::Any, &[1], false, &["2", "2"], b.clone());
    assert_eq!(any.as_bool().unwrap(), &[true, false]);
    let all = reduce(ReduceOp::All, &[0], false, &["2", "2"], b);
    assert_eq!(all.as_bool().unwrap(), &[false, false]);
    let e = reduce(ReduceOp::Max, &[1], false, &["2", "0"], f32s(&[2, 0], &[]));
    assert_eq!(e.as_f32().unwrap(), &[f32::NEG_INFINITY; 2]);
}

fn arg(op: ArgOp, x: Tensor) -> Vec<i64> {
    let mut g = G::new();
    let n = x.numel().to_string();
    let a = g.input("x", x.dtype(), &[&n]);
    let r = g.op(
        Op::ArgReduce {
            op,
            axis: 0,
            keepdim: false,
        },
        &[a],
    );
    g.out("y", r);
    run1(g, vec![("x", x)]).as_i64().unwrap().to_vec()
}

#[test]
fn argmax_ties_and_nan() {
    assert_eq!(arg(ArgOp::ArgMax, f32s(&[4], &[1.0, 3.0, 3.0, 2.0])), vec![1]);
    assert_eq!(arg(ArgOp::ArgMin, f32s(&[4], &[2.0, 1.0, 5.0, 1.0])), vec![1]);
    assert_eq!(arg(ArgOp::ArgMax, f32s(&[3], &[1.0, f32::NAN, 5.0])), vec![1]);
    assert_eq!(arg(ArgOp::ArgMin, f32s(&[3], &[1.0, f32::NAN, -5.0])), vec![1]);
    assert_eq!(arg(ArgOp::ArgMax, i64s(&[3], &[-1, 7, 7])), vec![1]);
}

#[test]
fn argmax_along_inner_axis() {
    let mut g = G::new();
    let a = g.input("x", DType::F32, &["2", "3"]);
    let r = g.op(
        Op::ArgReduce {
            op: ArgOp::ArgMax,
            axis: 1,
            keepdim: true,
        },
        &[a],
    );
    g.out("y", r);
    let y = run1(g, vec![("x", f32s(&[2, 3], &[1.0, 9.0, 3.0, 7.0, 5.0, 6.0]))]);
    assert_eq!((y.shape(), y.as_i64().unwrap()), (&[2, 1][..], &[1, 0][..]));
}

fn cumsum(exclusive: bool, reverse: bool) -> Vec<f32> {
    let mut g = G::new();
    let a = g.input("x", DType::F32, &["4"]);
    let r = g.op(
        Op::Cumsum {
            axis: 0,
            exclusive,
            reverse,
        },
        &[a],
    );
    g.out("y", r);
    run1(g, vec![("x", f32s(&[4], &[1.0, 2.0, 3.0, 4.0]))]).to_f32_vec()
}

#[test]
fn cumsum_variants() {
    assert_eq!(cumsum(false, false), vec![1.0, 3.0, 6.0, 10.0]);
    assert_eq!(cumsum(true, false), vec![0.0, 1.0, 3.0, 6.0]);
    assert_eq!(cumsum(false, true), vec![10.0, 9.0, 7.0, 4.0]);
    assert_eq!(cumsum(true, true), vec![9.0, 7.0, 4.0, 0.0]);
}

fn topk(k: &str, largest: bool, x: Tensor) -> (Tensor, Tensor) {
    let mut g = G::new();
    let n = x.numel().to_string();
    let a = g.input("x", x.dtype(), &[&n]);
    let id = g.node(
        Op::TopK {
            k: Dim::parse(k).unwrap(),
            axis: 0,
            largest,
        },
        &[a],
    );
    g.out("v", Value::of(id));
    g.out("i", Value { node: id, index: 1 });
    let mut out = run_graph(g, vec![("x", x)]).unwrap();
    let i = out.pop().unwrap();
    (out.pop().unwrap(), i)
}

#[test]
fn topk_orders_nan_first_and_ties_by_index() {
    let x = f32s(&[6], &[3.0, 1.0, 4.0, 1.0, 5.0, f32::NAN]);
    let (v, i) = topk("3", true, x.clone());
    let v = v.to_f32_vec();
    assert!(v[0].is_nan());
    assert_eq!(&v[1..], &[5.0, 4.0]);
    assert_eq!(i.as_i64().unwrap(), &[5, 4, 2]);
    let (v, i) = topk("3", false, x);
    assert_eq!(v.to_f32_vec(), vec![1.0, 1.0, 3.0]);
    assert_eq!(i.as_i64().unwrap(), &[1, 3, 0]);
    let (v, i) = topk("2", true, i64s(&[4], &[2, 9, 2, 9]));
    assert_eq!((v.as_i64().unwrap(), i.as_i64().unwrap()), (&[9, 9][..], &[1, 3][..]));
}
