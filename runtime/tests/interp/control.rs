use mlc_ir::{BinaryOp, DType, Dim, Literal, LoopOp, Op, Value};
use mlc_runtime::{RuntimeError, Tensor};

use crate::common::*;

/// acc += step until acc >= 6; emits acc and the index.
fn counting_loop(max_trips: u64) -> G {
    let mut b = G::new();
    let i = b.input("i", DType::I64, &[]);
    let acc = b.input("acc", DType::I64, &[]);
    let step = b.input("step", DType::I64, &[]);
    let next = b.op(Op::Binary(BinaryOp::Add), &[acc, step]);
    let six = b.op(Op::Const(Literal::int(DType::I64, 6)), &[]);
    let stop = b.op(Op::Binary(BinaryOp::Ge), &[next, six]);
    b.out("acc", next);
    b.out("stop", stop);
    b.out("e", next);
    b.out("i", i);

    let mut g = G::new();
    let _x = g.input("x", DType::F32, &["N"]);
    let zero = g.op(Op::Const(Literal::int(DType::I64, 0)), &[]);
    let two = g.op(Op::Const(Literal::int(DType::I64, 2)), &[]);
    let l = LoopOp {
        trips: Dim::sym("N"),
        max_trips,
        n_carried: 1,
        has_stop: true,
        n_emit: 2,
        body: b.g,
    };
    let id =
        g.g.add(Op::Loop(Box::new(l)), &[zero, two], at("decode", "m.dsl:9:5"))
            .unwrap();
    for (k, name) in ["acc", "e", "i"].into_iter().enumerate() {
        g.out(
            name,
            Value {
                node: id,
                index: k as u32,
            },
        );
    }
    g
}

#[test]
fn loop_carries_stops_and_emits() {
    let out = run_graph(counting_loop(10), vec![("x", f32s(&[5], &[0.0; 5]))]).unwrap();
    assert_eq!(out[0].as_i64().unwrap(), &[6]);
    assert_eq!(
        (out[1].shape(), out[1].as_i64().unwrap()),
        (&[5][..], &[2, 4, 6, 0, 0][..])
    );
    assert_eq!(out[2].as_i64().unwrap(), &[0, 1, 2, 0, 0]);
}

#[test]
fn loop_with_fewer_trips_than_the_stop() {
    let out = run_graph(counting_loop(10), vec![("x", f32s(&[2], &[0.0; 2]))]).unwrap();
    assert_eq!(out[0].as_i64().unwrap(), &[4]);
    assert_eq!(out[1].as_i64().unwrap(), &[2, 4]);
    let out = run_graph(counting_loop(10), vec![("x", f32s(&[0], &[]))]).unwrap();
    assert_eq!(out[0].as_i64().unwrap(), &[0]);
    assert_eq!(out[1].shape(), &[0]);
}

#[test]
fn loop_over_its_maximum_names_the_loop() {
    let err = run_graph(counting_loop(3), vec![("x", f32s(&[4], &[0.0; 4]))]).unwrap_err();
    assert!(matches!(err, RuntimeError::TooManyTrips { trips: 4, max: 3, .. }));
    assert_eq!(
        err.to_string(),
        "`loop` at `decode @ m.dsl:9:5`: 4 trips exceed the maximum of 3"
    );
}

#[test]
fn loop_with_tensor_state_and_captured_value() {
    // h = 2 * h + x, three times, emitting h.
    let mut b = G::new();
    let _i = b.input("i", DType::I64, &[]);
    let h = b.input("h", DType::F32, &["2"]);
    let x = b.input("x", DType::F32, &["2"]);
    let h2 = b.op(Op::Binary(BinaryOp::Add), &[h, h]);
    let next = b.op(Op::Binary(BinaryOp::Add), &[h2, x]);
    b.out("h", next);
    b.out("e", next);

    let mut g = G::new();
    let h0 = g.input("h0", DType::F32, &["2"]);
    let x = g.input("x", DType::F32, &["2"]);
    let l = LoopOp {
        trips: Dim::c(3),
        max_trips: 3,
        n_carried: 1,
        has_stop: false,
        n_emit: 1,
        body: b.g,
    };
    let id = g.node(Op::Loop(Box::new(l)), &[h0, x]);
    g.out("h", Value::of(id));
    g.out("hs", Value { node: id, index: 1 });
    let out = run_graph(
        g,
        vec![
            ("h0", f32s(&[2], &[1.0, 0.0])),
            ("x", Tensor::from_f32(&[2], vec![0.0, 1.0])),
        ],
    )
    .unwrap();
    assert_eq!(out[0].as_f32().unwrap(), &[8.0, 7.0]);
    assert_eq!(out[1].shape(), &[3, 2]);
    assert_eq!(out[1].as_f32().unwrap(), &[2.0, 1.0, 4.0, 3.0, 8.0, 7.0]);
}
