use mlc_ir::{BinaryOp, DType, Op};
use mlc_runtime::RuntimeError;

use crate::common::*;

/// `x: f32[B, 3]`, `y: f32[B]`; returns `sum(x, axis 1) + y`.
fn graph() -> G {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["B", "3"]);
    let y = g.input("y", DType::F32, &["B"]);
    let s = g.op(
        Op::Reduce {
            op: mlc_ir::ReduceOp::Sum,
            axes: vec![1],
            keepdim: false,
        },
        &[x],
    );
    let r = g.op(Op::Binary(BinaryOp::Add), &[s, y]);
    g.out("z", r);
    g
}

#[test]
fn binds_symbolic_dims() {
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let z = run1(graph(), vec![("x", x), ("y", f32s(&[2], &[0.5, -1.0]))]);
    assert_eq!(z.as_f32().unwrap(), &[6.5, 14.0]);
}

#[test]
fn conflicting_dims_name_both_inputs_and_values() {
    let err = run_graph(
        graph(),
        vec![("x", f32s(&[2, 3], &[0.0; 6])), ("y", f32s(&[3], &[0.0; 3]))],
    )
    .unwrap_err();
    assert!(matches!(err, RuntimeError::DimConflict { .. }));
    assert_eq!(
        err.to_string(),
        "input `y`: dimension `B` is 3 here, but input `x` bound it to 2"
    );
}

#[test]
fn wrong_type_missing_and_extra_inputs() {
    let err = run_graph(
        graph(),
        vec![("x", f32s(&[2, 4], &[0.0; 8])), ("y", f32s(&[2], &[0.0; 2]))],
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "input `x`: expected f32[B, 3], got f32[2, 4]");
    let err = run_graph(
        graph(),
        vec![("x", i64s(&[2, 3], &[0; 6])), ("y", f32s(&[2], &[0.0; 2]))],
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "input `x`: expected f32[B, 3], got i64[2, 3]");
    let err = run_graph(
        graph(),
        vec![("x", f32s(&[6], &[0.0; 6])), ("y", f32s(&[2], &[0.0; 2]))],
    )
    .unwrap_err();
    assert!(matches!(err, RuntimeError::InputType { .. }));
    let err = run_graph(graph(), vec![("x", f32s(&[2, 3], &[0.0; 6]))]).unwrap_err();
    assert_eq!(err.to_string(), "missing input `y`: f32[B]");
    let err = run_graph(
        graph(),
        vec![
            ("x", f32s(&[2, 3], &[0.0; 6])),
            ("y", f32s(&[2], &[0.0; 2])),
            ("w", f32s(&[1], &[0.0])),
        ],
    )
    .unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnexpectedInput { ref name, .. } if name == "w"),
        "{err}"
    );
}

#[test]
fn compound_dims_are_checked() {
    let mut g = G::new();
    let _x = g.input("x", DType::F32, &["N"]);
    let y = g.input("y", DType::F32, &["N + 1"]);
    g.out("y", y);
    let ok = run_graph(g, vec![("x", f32s(&[2], &[0.0; 2])), ("y", f32s(&[3], &[0.0; 3]))]);
    assert!(ok.is_ok());
    let mut g = G::new();
    let _x = g.input("x", DType::F32, &["N"]);
    let y = g.input("y", DType::F32, &["N + 1"]);
    g.out("y", y);
    let err = run_graph(g, vec![("x", f32s(&[2], &[0.0; 2])), ("y", f32s(&[2], &[0.0; 2]))]).unwrap_err();
    assert_eq!(err.to_string(), "input `y`: expected f32[N + 1] = [3], got f32[2]");
}

#[test]
fn unknown_entry_point() {
    let module = graph().module();
    let err = mlc_runtime::run(
        &module,
        "nope",
        &Default::default(),
        &[],
        &mlc_runtime::RunOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "no entry point `nope`; the module has: f");
}

#[test]
fn huge_shapes_are_errors_not_aborts() {
    let mut g = G::new();
    let _x = g.input("x", DType::F32, &["N"]);
    let e = g.op(
        Op::Iota {
            shape: sh(&["N*N*N*N"]),
            axis: 0,
            dtype: DType::I64,
        },
        &[],
    );
    g.out("e", e);
    let err = run_graph(g, vec![("x", f32s(&[1000], &[0.0; 1000]))]).unwrap_err();
    assert!(matches!(err, RuntimeError::TooLarge { .. }), "{err}");
}
