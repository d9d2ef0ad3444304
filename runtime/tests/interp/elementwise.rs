use half::f16;
use mlc_ir::{BinaryOp, DType, Op, TensorType, UnaryOp};
use mlc_runtime::{RuntimeError, Tensor};

use crate::common::*;

fn binary(op: BinaryOp, dtype: DType, xs: &[&str], ys: &[&str], x: Tensor, y: Tensor) -> Result<Tensor, RuntimeError> {
    let mut g = G::new();
    let a = g.input("x", dtype, xs);
    let b = g.input("y", dtype, ys);
    let r = g.op_at(Op::Binary(op), &[a, b], at("z", "m.dsl:3:9"));
    g.out("z", r);
    run_graph(g, vec![("x", x), ("y", y)]).map(|mut v| v.remove(0))
}

fn unary(op: UnaryOp, x: Tensor) -> Tensor {
    let mut g = G::new();
    let dims: Vec<String> = x.shape().iter().map(|d| d.to_string()).collect();
    let dims: Vec<&str> = dims.iter().map(String::as_str).collect();
    let a = g.input("x", x.dtype(), &dims);
    let r = g.op(Op::Unary(op), &[a]);
    g.out("y", r);
    run1(g, vec![("x", x)])
}

#[test]
fn add_broadcasts_row_vector() {
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let y = f32s(&[3], &[10.0, 20.0, 30.0]);
    let z = binary(BinaryOp::Add, DType::F32, &["2", "3"], &["3"], x, y).unwrap();
    assert_eq!(z.shape(), &[2, 3]);
    assert_eq!(z.as_f32().unwrap(), &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
}

#[test]
fn integer_div_and_rem_follow_python() {
    let x = i64s(&[4], &[7, -7, 7, -7]);
    let y = i64s(&[4], &[2, 2, -2, -2]);
    let q = binary(BinaryOp::Div, DType::I64, &["4"], &["4"], x.clone(), y.clone()).unwrap();
    assert_eq!(q.as_i64().unwrap(), &[3, -4, -4, 3]);
    let r = binary(BinaryOp::Rem, DType::I64, &["4"], &["4"], x, y).unwrap();
    assert_eq!(r.as_i64().unwrap(), &[1, 1, -1, -1]);
}

#[test]
fn float_rem_takes_sign_of_divisor() {
    let x = f32s(&[3], &[-7.0, 7.0, 5.5]);
    let y = f32s(&[3], &[2.0, -2.0, 2.0]);
    let r = binary(BinaryOp::Rem, DType::F32, &["3"], &["3"], x, y).unwrap();
    assert_eq!(r.as_f32().unwrap(), &[1.0, -1.0, 1.5]);
}

#[test]
fn integer_division_by_zero_names_the_op() {
    let err = binary(
        BinaryOp::Div,
        DType::I64,
        &["1"],
        &["1"],
        i64s(&[1], &[1]),
        i64s(&[1], &[0]),
    )
    .unwrap_err();
    assert!(matches!(err, RuntimeError::DivisionByZero { op: "div", .. }));
    assert_eq!(err.to_string(), "`div` at `z @ m.dsl:3:9`: integer division by zero");
}

#[test]
fn i32_arithmetic_wraps() {
    let x = Tensor::from_i32(&[2], vec![i32::MAX, i32::MIN]);
    let y = Tensor::from_i32(&[2], vec![1, -1]);
    let s = binary(BinaryOp::Add, DType::I32, &["2"], &["2"], x.clone(), y.clone()).unwrap();
    assert_eq!(s.as_i32().unwrap(), &[i32::MIN, i32::MAX]);
    let q = binary(BinaryOp::Div, DType::I32, &["2"], &["2"], x, y).unwrap();
    assert_eq!(q.as_i32().unwrap(), &[i32::MAX, i32::MIN]); // MIN / -1 wraps
    let n = unary(UnaryOp::Neg, Tensor::from_i32(&[1], vec![i32::MIN]));
    assert_eq!(n.as_i32().unwrap(), &[i32::MIN]);
}

#[test]
fn integer_pow_and_negative_exponent() {
    let p = binary(
        BinaryOp::Pow,
        DType::I64,
        &["2"],
        &["2"],
        i64s(&[2], &[3, -2]),
        i64s(&[2], &[4, 3]),
    )
    .unwrap();
    assert_eq!(p.as_i64().unwrap(), &[81, -8]);
    let err = binary(
        BinaryOp::Pow,
        DType::I64,
        &["1"],
        &["1"],
        i64s(&[1], &[2]),
        i64s(&[1], &[-1]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("negative integer exponent"), "{err}");
}

#[test]
fn max_min_ignore_nan_like_std() {
    let x = f32s(&[2], &[f32::NAN, 1.0]);
    let y = f32s(&[2], &[2.0, f32::NAN]);
    let m = binary(BinaryOp::Max, DType::F32, &["2"], &["2"], x, y).unwrap();
    assert_eq!(m.as_f32().unwrap(), &[2.0, 1.0]);
}

#[test]
fn f16_results_round_to_nearest_even() {
    let one = f16::from_f32(1.0);
    let x = Tensor::from_f16(&[2], vec![one, one]);
    // 2^-11 is half an ulp of 1.0 in f16, 3 * 2^-11 one and a half.
    let y = Tensor::from_f16(
        &[2],
        vec![f16::from_f32(2f32.powi(-11)), f16::from_f32(3.0 * 2f32.powi(-11))],
    );
    let z = binary(BinaryOp::Add, DType::F16, &["2"], &["2"], x, y).unwrap();
    assert_eq!(z.to_f32_vec(), vec![1.0, 1.0 + 2f32.powi(-9)]);
}

#[test]
fn comparisons_produce_bool() {
    let x = f32s(&[3], &[1.0, 2.0, f32::NAN]);
    let y = f32s(&[3], &[2.0, 2.0, f32::NAN]);
    let lt = binary(BinaryOp::Lt, DType::F32, &["3"], &["3"], x.clone(), y.clone()).unwrap();
    assert_eq!(lt.as_bool().unwrap(), &[true, false, false]);
    let eq = binary(BinaryOp::Eq, DType::F32, &["3"], &["3"], x, y).unwrap();
    assert_eq!(eq.as_bool().unwrap(), &[false, true, false]);
    let xor = binary(
        BinaryOp::Xor,
        DType::Bool,
        &["2"],
        &["2"],
        bools(&[2], &[true, true]),
        bools(&[2], &[true, false]),
    )
    .unwrap();
    assert_eq!(xor.as_bool().unwrap(), &[false, true]);
}

#[test]
fn unary_float_functions() {
    let r = unary(UnaryOp::Round, f32s(&[5], &[0.5, 1.5, 2.5, -0.5, -1.7]));
    assert_eq!(r.as_f32().unwrap(), &[0.0, 2.0, 2.0, -0.0, -2.0]);
    let s = unary(UnaryOp::Sign, f32s(&[4], &[-3.0, 0.0, 2.0, -0.0]));
    assert_eq!(s.as_f32().unwrap(), &[-1.0, 0.0, 1.0, -0.0]);
    let e = unary(UnaryOp::Erf, f32s(&[3], &[0.5, -1.0, 0.0]));
    let want = [0.520_499_9_f32, -0.842_700_8, 0.0];
    for (g, w) in e.as_f32().unwrap().iter().zip(want) {
        assert!((g - w).abs() <= 1e-7, "{g} vs {w}");
    }
    let sg = unary(UnaryOp::Sigmoid, f32s(&[2], &[0.0, -200.0]));
    assert_eq!(sg.as_f32().unwrap(), &[0.5, 0.0]);
    let rs = unary(UnaryOp::Rsqrt, f32s(&[1], &[4.0]));
    assert_eq!(rs.as_f32().unwrap(), &[0.5]);
    let n = unary(UnaryOp::Not, bools(&[2], &[true, false]));
    assert_eq!(n.as_bool().unwrap(), &[false, true]);
    let a = unary(UnaryOp::Abs, i64s(&[2], &[-3, 4]));
    assert_eq!(a.as_i64().unwrap(), &[3, 4]);
}

#[test]
fn select_is_relu() {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["4"]);
    let zero = g.op(Op::Const(mlc_ir::Literal::float(DType::F32, 0.0)), &[]);
    let pos = g.op(Op::Binary(BinaryOp::Gt), &[x, zero]);
    let r = g.op(Op::Select, &[pos, x, zero]);
    g.out("y", r);
    let y = run1(g, vec![("x", f32s(&[4], &[-1.0, 2.0, -3.0, 4.0]))]);
    assert_eq!(y.as_f32().unwrap(), &[0.0, 2.0, 0.0, 4.0]);
}

#[test]
fn cast_truncates_toward_zero() {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["3"]);
    let r = g.op(Op::Cast(DType::I32), &[x]);
    g.out("y", r);
    let y = run1(g, vec![("x", f32s(&[3], &[1.7, -1.7, 3e9]))]);
    assert_eq!(y.as_i32().unwrap(), &[1, -1, i32::MAX]);
}

#[test]
fn symbolic_dims_that_disagree_at_run_time_are_errors() {
    // `x: f32[B]`, `y: f32[N]` added as if B == N (a graph built without inference).
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["B"]);
    let y = g.input("y", DType::F32, &["N"]);
    let z = g.g.add_typed(
        Op::Binary(BinaryOp::Add),
        &[x, y],
        vec![TensorType::new(DType::F32, sh(&["B"]))],
        at("z", "m.dsl:4:1"),
    );
    g.out("z", mlc_ir::Value::of(z));
    let err = run_graph(g, vec![("x", f32s(&[2], &[1.0, 2.0])), ("y", f32s(&[3], &[1.0; 3]))]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`add` at `z @ m.dsl:4:1`") && msg.contains("[2]") && msg.contains("[3]"),
        "{msg}"
    );
}
