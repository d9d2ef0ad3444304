//! Graphs built without type inference (as a buggy pass might leave them) and hostile inputs
//! give errors, never panics.

use mlc_ir::{BinaryOp, DType, Dim, Edge, Graph, LoopOp, Op, ReduceOp, TensorType, UnaryOp, Value};
use mlc_runtime::{RuntimeError, Tensor};

use crate::common::*;

/// A graph `x: f32[2, 3]`, `i: i64[2, 3]` with one node `op(operands)` declared as `out`.
fn typed(op: Op, operands: &[usize], out: TensorType) -> Result<Vec<Tensor>, RuntimeError> {
    let mut g = G::new();
    let vals = [
        g.input("x", DType::F32, &["2", "3"]),
        g.input("i", DType::I64, &["2", "3"]),
        g.input("s", DType::I64, &[]),
    ];
    let ops: Vec<Value> = operands.iter().map(|&k| vals[k]).collect();
    let n = g.g.add_typed(op, &ops, vec![out], at("bad", "m.dsl:1:1"));
    g.out("y", Value::of(n));
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let i = i64s(&[2, 3], &[0, 1, 2, 5, -1, 0]);
    run_graph(g, vec![("x", x), ("i", i), ("s", Tensor::scalar_i64(1))])
}

fn f(dims: &[&str]) -> TensorType {
    ty(DType::F32, dims)
}

#[test]
fn malformed_nodes_are_errors() {
    let cases: Vec<(Op, Vec<usize>, TensorType)> = vec![
        (Op::Binary(BinaryOp::Add), vec![0], f(&["2", "3"])),
        (Op::Binary(BinaryOp::Add), vec![0, 1], f(&["2", "3"])),
        (Op::Binary(BinaryOp::And), vec![0, 0], f(&["2", "3"])),
        (Op::Unary(UnaryOp::Exp), vec![1], ty(DType::I64, &["2", "3"])),
        (Op::Unary(UnaryOp::Not), vec![0], f(&["2", "3"])),
        (Op::Gather { axis: 5 }, vec![0, 1], f(&["2", "3"])),
        (Op::Gather { axis: 1 }, vec![0, 1], f(&["2", "3"])),
        (Op::Take { axis: 0 }, vec![0, 1], f(&["2", "3", "3"])),
        (Op::Scatter { axis: 1 }, vec![0, 1, 1], f(&["2", "3"])),
        (
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: vec![0, 0],
                keepdim: false,
            },
            vec![0],
            f(&["3"]),
        ),
        (
            Op::Reduce {
                op: ReduceOp::Any,
                axes: vec![0],
                keepdim: false,
            },
            vec![0],
            f(&["3"]),
        ),
        (Op::Permute(vec![0, 0]), vec![0], f(&["2", "2"])),
        (Op::Reshape(sh(&["4"])), vec![0], f(&["4"])),
        (Op::Expand(sh(&["3", "3"])), vec![0], f(&["3", "3"])),
        (Op::MatMul, vec![0, 0], f(&["2", "3"])),
        (Op::Concat { axis: 0 }, vec![], f(&["2", "3"])),
        (Op::Concat { axis: 0 }, vec![0, 1], f(&["4", "3"])),
        (Op::Select, vec![0, 0, 0], f(&["2", "3"])),
        (
            Op::TopK {
                k: Dim::c(4),
                axis: 1,
                largest: true,
            },
            vec![0],
            f(&["2", "4"]),
        ),
        (
            Op::DynamicSlice {
                axis: 1,
                size: Dim::c(4),
            },
            vec![0, 2],
            f(&["2", "4"]),
        ),
        (
            Op::DynamicSlice {
                axis: 1,
                size: Dim::c(1),
            },
            vec![0, 0],
            f(&["2", "1"]),
        ),
        (Op::DynamicUpdateSlice { axis: 0 }, vec![0, 0, 0], f(&["2", "3"])),
        (
            Op::Slice {
                axis: 0,
                start: Dim::c(2),
                end: Dim::c(1),
                step: 1,
            },
            vec![0],
            f(&["0", "3"]),
        ),
        (
            Op::Iota {
                shape: sh(&["3"]),
                axis: 1,
                dtype: DType::I64,
            },
            vec![],
            ty(DType::I64, &["3"]),
        ),
        (Op::RngUniform { shape: sh(&["2"]) }, vec![0, 2], f(&["2"])),
        (
            Op::Cumsum {
                axis: 3,
                exclusive: false,
                reverse: false,
            },
            vec![0],
            f(&["2", "3"]),
        ),
        (Op::DimSize(Dim::sym("Q")), vec![], ty(DType::I64, &[])),
        (
            Op::Iota {
                shape: sh(&["-1"]),
                axis: 0,
                dtype: DType::I64,
            },
            vec![],
            ty(DType::I64, &["-1"]),
        ),
        // Well-formed op, wrongly declared result type.
        (Op::Unary(UnaryOp::Neg), vec![0], f(&["3", "2"])),
        (Op::Cast(DType::I32), vec![0], f(&["2", "3"])),
    ];
    for (op, operands, out) in cases {
        let name = format!("{op:?}");
        let result = typed(op, &operands, out);
        assert!(result.is_err(), "{name} should fail");
    }
}

#[test]
fn wrongly_declared_results_name_both_types() {
    let err = typed(Op::Unary(UnaryOp::Neg), &[0], f(&["3", "2"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`neg` at `bad @ m.dsl:1:1`: result 0 is f32[2, 3], but its type is f32[3, 2] = [3, 2]"
    );
}

#[test]
fn bad_loops_are_errors() {
    let mut body = G::new();
    let i = body.input("i", DType::I64, &[]);
    body.out("i", i);
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["2"]);
    let l = LoopOp {
        trips: Dim::c(2),
        max_trips: 2,
        n_carried: 1,
        has_stop: false,
        n_emit: 0,
        body: body.g,
    };
    let n = g.g.add_typed(Op::Loop(Box::new(l)), &[x], vec![f(&["2"])], at("l", ""));
    g.out("y", Value::of(n));
    assert!(run_graph(g, vec![("x", f32s(&[2], &[0.0; 2]))]).is_err());

    // A body whose output refers to a result its node does not have.
    let mut body = G::new();
    let i = body.input("i", DType::I64, &[]);
    body.out("e", Value { node: i.node, index: 5 });
    let mut g = G::new();
    let l = LoopOp {
        trips: Dim::c(1),
        max_trips: 1,
        n_carried: 0,
        has_stop: false,
        n_emit: 1,
        body: body.g,
    };
    let n =
        g.g.add_typed(Op::Loop(Box::new(l)), &[], vec![ty(DType::I64, &["1"])], at("l", ""));
    g.out("y", Value::of(n));
    let err = run_graph(g, vec![]).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn cycles_and_dangling_outputs_are_errors() {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["2"]);
    let a = g.op(Op::Unary(UnaryOp::Neg), &[x]);
    let b = g.op(Op::Unary(UnaryOp::Neg), &[a]);
    g.g.dag.add_edge(b.node, a.node, Edge { result: 0, operand: 1 });
    g.out("y", b);
    let err = run_graph(g, vec![("x", f32s(&[2], &[0.0; 2]))]).unwrap_err();
    assert!(matches!(err, RuntimeError::Cycle(_)), "{err}");

    let mut g = G::new();
    let x = g.input("x", DType::F32, &["2"]);
    g.out("y", Value { node: x.node, index: 3 });
    assert!(run_graph(g, vec![("x", f32s(&[2], &[0.0; 2]))]).is_err());

    let mut g = Graph::new();
    g.inputs.push(mlc_ir::NodeId::new(7));
    let module = G { g }.module();
    let err = mlc_runtime::run(&module, "f", &Default::default(), &[], &Default::default());
    assert!(err.is_err());
}

#[test]
fn empty_tensors_with_huge_axes_are_refused() {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["A", "B", "C"]);
    let s = g.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![0],
            keepdim: false,
        },
        &[x],
    );
    g.out("y", s);
    let x = Tensor::from_f32(&[0, 1 << 20, 1 << 20], vec![]);
    let err = run_graph(g, vec![("x", x)]).unwrap_err();
    assert!(matches!(err, RuntimeError::TooLarge { .. }), "{err}");
}
