//! The CPU plan executor against the reference interpreter.
//!
//! Every plan here is built by hand (kernels in hand-written Kernel IR, `Op`, `MatMul` and
//! `Loop` steps) next to the Graph IR it stands for; the interpreter running that graph is
//! the oracle.

#[path = "interp/common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use mlc_ir::{
    Access, BinaryOp, BufId, BufKind, DType, Dim, FunctionPlan, IExpr, Init, KBuf, KStmt, KernelFn, Literal, LoopOp,
    Module, ModulePlan, Op, Origin, ParamDecl, PlanBuf, ReduceOp, Scalar, Step, TensorType, VExpr, Value,
};
use mlc_runtime::{Model, RunOptions, RuntimeError, Session, Tensor, Weights, run};

// ---------------------------------------------------------------- building plans

fn pbuf(ty: TensorType, kind: BufKind, name: &str) -> PlanBuf {
    PlanBuf {
        ty,
        kind,
        name: name.into(),
    }
}

/// A plan under construction.
#[derive(Default)]
struct P {
    f: FunctionPlan,
}

impl P {
    fn new(name: &str) -> P {
        P {
            f: FunctionPlan {
                name: name.into(),
                ..FunctionPlan::default()
            },
        }
    }
    fn buf(&mut self, ty: TensorType, kind: BufKind, name: &str) -> BufId {
        self.f.bufs.push(pbuf(ty, kind, name));
        (self.f.bufs.len() - 1) as BufId
    }
    fn input(&mut self, name: &str, dtype: DType, dims: &[&str]) -> BufId {
        let b = self.buf(ty(dtype, dims), BufKind::Input, name);
        self.f.inputs.push(b);
        b
    }
    fn param(&mut self, name: &str, dtype: DType, dims: &[&str]) -> BufId {
        self.buf(ty(dtype, dims), BufKind::Param(name.into()), name)
    }
    fn constant(&mut self, lit: Literal) -> BufId {
        let t = TensorType::new(lit.dtype, lit.shape.iter().map(|&d| Dim::c(d as i64)).collect());
        self.buf(t, BufKind::Const(lit), "")
    }
    fn temp(&mut self, dtype: DType, dims: &[&str]) -> BufId {
        self.buf(ty(dtype, dims), BufKind::Temp, "")
    }
    fn op(&mut self, op: Op, inputs: &[BufId], dtype: DType, dims: &[&str]) -> BufId {
        let out = self.temp(dtype, dims);
        self.f.steps.push(Step::Op {
            op,
            inputs: inputs.to_vec(),
            outputs: vec![out],
            origin: Origin::default(),
        });
        out
    }
    fn kernel(&mut self, kernel: u32, bufs: &[BufId], dims: &[&str]) {
        self.f.steps.push(Step::Kernel {
            kernel,
            bufs: bufs.to_vec(),
            dims: sh(dims),
        });
    }
    fn out(&mut self, name: &str, b: BufId) {
        self.f.outputs.push((name.into(), b));
    }
}

fn module_of(g: G, params: Vec<ParamDecl>) -> Module {
    let mut m = g.module();
    m.params = params;
    m
}

fn param_decl(name: &str, dtype: DType, shape: &[u64]) -> ParamDecl {
    ParamDecl {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        init: Init::Fill(0.0),
    }
}

/// A model of `module` running `functions` (entry `f` first) with `kernels`, with weights.
fn model(module: Module, kernels: Vec<KernelFn>, functions: Vec<FunctionPlan>, weights: Vec<(&str, Tensor)>) -> Model {
    let plan = ModulePlan { kernels, functions };
    let w = Weights::from_tensors(&module, named(weights)).unwrap();
    let mut m = Model::from_plan(module, plan).unwrap();
    m.set_weights(w);
    m
}

fn session(m: &Model, threads: usize) -> Session {
    let mut s = m.session().unwrap();
    s.set_threads(threads);
    s
}

/// Runs entry `f` through the model and through the interpreter.
fn both(m: &Model, inputs: Vec<(&str, Tensor)>, threads: usize) -> (Vec<Tensor>, Vec<Tensor>) {
    let inputs = named(inputs);
    let got = session(m, threads).run("f", &inputs).unwrap();
    let want = run(m.module(), "f", m.weights(), &inputs, &RunOptions::default()).unwrap();
    assert_eq!(
        got.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        want.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    (
        got.into_iter().map(|(_, t)| t).collect(),
        want.into_iter().map(|(_, t)| t).collect(),
    )
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.type_string(), want.type_string());
    for (i, (g, w)) in got.to_f32_vec().iter().zip(want.to_f32_vec()).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "element {i}: got {g}, want {w}");
    }
}

fn ramp(n: usize, scale: f32, offset: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 % 101) as f32 / 101.0 - 0.5) * scale + offset)
        .collect()
}

// ---------------------------------------------------------------- Kernel IR

fn rd(name: &str, dtype: DType) -> KBuf {
    KBuf {
        name: name.into(),
        dtype,
        access: Access::Read,
    }
}

fn wr(name: &str, dtype: DType) -> KBuf {
    KBuf {
        name: name.into(),
        dtype,
        access: Access::Write,
    }
}

fn ld(buf: u32, index: IExpr) -> VExpr {
    VExpr::Load { buf, index }
}

fn bin(op: BinaryOp, a: VExpr, b: VExpr) -> VExpr {
    VExpr::Binary(op, Box::new(a), Box::new(b))
}

fn f32c(x: f32) -> VExpr {
    VExpr::Const(Scalar::F32(x))
}

/// `y[p, j] = max(x[p, j] + w[j], 0)` over `x: f32[N, C]`, `w: f32[C]`; dims `N`, `C`.
fn bias_relu_kernel() -> KernelFn {
    let (p, j) = (IExpr::Var(0), IExpr::Var(1));
    let at = p * IExpr::Dim(1) + j.clone();
    KernelFn {
        name: "bias_relu".into(),
        bufs: vec![rd("x", DType::F32), rd("w", DType::F32), wr("y", DType::F32)],
        dims: vec!["N".into(), "C".into()],
        parallel: (0, IExpr::Dim(0)),
        body: vec![KStmt::Loop {
            var: 1,
            extent: IExpr::Dim(1),
            vectorize: true,
            body: vec![KStmt::Store {
                buf: 2,
                index: at.clone(),
                value: bin(BinaryOp::Max, bin(BinaryOp::Add, ld(0, at), ld(1, j)), f32c(0.0)),
            }],
        }],
    }
}

/// `s[p] = sum_j y[p, j]` over `y: f32[N, C]`; dims `N`, `C`.
fn row_sum_kernel() -> KernelFn {
    let (p, j) = (IExpr::Var(0), IExpr::Var(1));
    let at = p.clone() * IExpr::Dim(1) + j;
    KernelFn {
        name: "row_sum".into(),
        bufs: vec![rd("y", DType::F32), wr("s", DType::F32)],
        dims: vec!["N".into(), "C".into()],
        parallel: (0, IExpr::Dim(0)),
        body: vec![
            KStmt::Acc {
                var: 2,
                dtype: DType::F32,
                init: f32c(0.0),
            },
            KStmt::Loop {
                var: 1,
                extent: IExpr::Dim(1),
                vectorize: false,
                body: vec![KStmt::Assign {
                    var: 2,
                    value: bin(BinaryOp::Add, VExpr::Var(2), ld(0, at)),
                }],
            },
            KStmt::Store {
                buf: 1,
                index: p,
                value: VExpr::Var(2),
            },
        ],
    }
}

/// `y = relu(x + w)`, `s = sum(y, 1)` for `x: f32[N, c]` and a weight `w: f32[c]`, as a
/// graph and as a plan of two kernels.
fn bias_relu_sum_with_weight(c: usize) -> Model {
    let cs = c.to_string();
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["N", &cs]);
    let w = g.g.add_typed(
        Op::Param { name: "w".into() },
        &[],
        vec![ty(DType::F32, &[&cs])],
        Origin::default(),
    );
    let h = g.op(Op::Binary(BinaryOp::Add), &[x, Value::of(w)]);
    let zero = g.op(Op::Const(Literal::float(DType::F32, 0.0)), &[]);
    let y = g.op(Op::Binary(BinaryOp::Max), &[h, zero]);
    let s = g.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![1],
            keepdim: false,
        },
        &[y],
    );
    g.out("y", y);
    g.out("s", s);

    let mut p = P::new("f");
    let x = p.input("x", DType::F32, &["N", &cs]);
    let w = p.param("w", DType::F32, &[&cs]);
    let y = p.temp(DType::F32, &["N", &cs]);
    let s = p.temp(DType::F32, &["N"]);
    p.kernel(0, &[x, w, y], &["N", &cs]);
    p.kernel(1, &[y, s], &["N", &cs]);
    p.out("y", y);
    p.out("s", s);
    model(
        module_of(g, vec![param_decl("w", DType::F32, &[c as u64])]),
        vec![bias_relu_kernel(), row_sum_kernel()],
        vec![p.f],
        vec![("w", Tensor::from_f32(&[c], ramp(c, 2.0, -0.2)))],
    )
}

#[test]
fn kernels_agree_with_the_interpreter() {
    let m = bias_relu_sum_with_weight(5);
    for (n, threads) in [(1, 1), (7, 1), (7, 4), (3000, 4), (0, 2)] {
        let x = Tensor::from_f32(&[n, 5], ramp(n * 5, 4.0, 0.1));
        let (got, want) = both(&m, vec![("x", x)], threads);
        assert_eq!(got[0], want[0], "relu(x + w) is exact");
        assert_close(&got[1], &want[1], 1e-5);
    }
}

#[test]
fn big_kernels_split_over_threads_give_the_same_bits() {
    let m = bias_relu_sum_with_weight(16);
    let x = named(vec![("x", Tensor::from_f32(&[4099, 16], ramp(4099 * 16, 3.0, 0.0)))]);
    let one = session(&m, 1).run("f", &x).unwrap();
    for threads in [2, 3, 8] {
        assert_eq!(session(&m, threads).run("f", &x).unwrap(), one);
    }
}

// ---------------------------------------------------------------- Op steps

#[test]
fn op_steps_run_through_the_reference_implementation() {
    // cumsum, then top-2 (two results), then take.
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["N", "4"]);
    let idx = g.input("idx", DType::I64, &["2"]);
    let c = g.op(
        Op::Cumsum {
            axis: 1,
            exclusive: false,
            reverse: false,
        },
        &[x],
    );
    let t = g.node(
        Op::TopK {
            k: Dim::c(2),
            axis: 1,
            largest: true,
        },
        &[c],
    );
    let (vals, inds) = (Value { node: t, index: 0 }, Value { node: t, index: 1 });
    let taken = g.op(Op::Take { axis: 0 }, &[vals, idx]);
    g.out("vals", vals);
    g.out("inds", inds);
    g.out("taken", taken);

    let mut p = P::new("f");
    let x = p.input("x", DType::F32, &["N", "4"]);
    let idx = p.input("idx", DType::I64, &["2"]);
    let c = p.op(
        Op::Cumsum {
            axis: 1,
            exclusive: false,
            reverse: false,
        },
        &[x],
        DType::F32,
        &["N", "4"],
    );
    let vals = p.temp(DType::F32, &["N", "2"]);
    let inds = p.temp(DType::I64, &["N", "2"]);
    p.f.steps.push(Step::Op {
        op: Op::TopK {
            k: Dim::c(2),
            axis: 1,
            largest: true,
        },
        inputs: vec![c],
        outputs: vec![vals, inds],
        origin: Origin::default(),
    });
    let taken = p.op(Op::Take { axis: 0 }, &[vals, idx], DType::F32, &["2", "2"]);
    p.out("vals", vals);
    p.out("inds", inds);
    p.out("taken", taken);
    let m = model(module_of(g, vec![]), vec![], vec![p.f], vec![]);
    let x = Tensor::from_f32(
        &[3, 4],
        vec![1.0, -2.0, 3.0, 0.5, 0.0, 0.0, 1.0, -1.0, 2.0, 2.0, -5.0, 1.0],
    );
    let (got, want) = both(&m, vec![("x", x.clone()), ("idx", i64s(&[2], &[2, 0]))], 2);
    assert_eq!(got, want);

    // A bad index fails as in the interpreter, with the same error.
    let inputs = named(vec![("x", x), ("idx", i64s(&[2], &[3, 0]))]);
    let err = session(&m, 1).run("f", &inputs).unwrap_err();
    let oracle = run(m.module(), "f", m.weights(), &inputs, &RunOptions::default()).unwrap_err();
    assert!(matches!(err, RuntimeError::IndexOutOfRange { index: 3, .. }), "{err}");
    assert_eq!(err.to_string(), oracle.to_string());
}

// ---------------------------------------------------------------- MatMul steps

/// `a @ transpose(w)` with `a: [2, 1, M, K]` and `w: [3, N, K]` (batch broadcast both ways),
/// and `a2 @ v` with `a2: [B, M, K]` and `v: [K, N]`.
/// `out = a @ b` (`b` read transposed when `b_transposed`), without an epilogue.
fn matmul_step(a: BufId, b: BufId, out: BufId, b_transposed: bool) -> Step {
    Step::MatMul {
        a,
        b,
        out,
        b_transposed,
        epilogue: mlc_ir::MatMulEpilogue::default(),
        origin: Origin::default(),
    }
}

fn matmul_model(dtype: DType, _m: usize, k: usize, n: usize) -> Model {
    let (ks, ns) = (k.to_string(), n.to_string());
    let mut g = G::new();
    let a = g.input("a", dtype, &["2", "1", "M", &ks]);
    let a2 = g.input("a2", dtype, &["B", "M", &ks]);
    let w = g.g.add_typed(
        Op::Param { name: "w".into() },
        &[],
        vec![ty(dtype, &["3", &ns, &ks])],
        Origin::default(),
    );
    let v = g.g.add_typed(
        Op::Param { name: "v".into() },
        &[],
        vec![ty(dtype, &[&ks, &ns])],
        Origin::default(),
    );
    let wt = g.op(Op::Permute(vec![0, 2, 1]), &[Value::of(w)]);
    let y = g.op(Op::MatMul, &[a, wt]);
    let z = g.op(Op::MatMul, &[a2, Value::of(v)]);
    g.out("y", y);
    g.out("z", z);
    let module = module_of(
        g,
        vec![
            param_decl("v", dtype, &[k as u64, n as u64]),
            param_decl("w", dtype, &[3, n as u64, k as u64]),
        ],
    );

    let mut p = P::new("f");
    let a = p.input("a", dtype, &["2", "1", "M", &ks]);
    let a2 = p.input("a2", dtype, &["B", "M", &ks]);
    let w = p.param("w", dtype, &["3", &ns, &ks]);
    let v = p.param("v", dtype, &[&ks, &ns]);
    let y = p.temp(dtype, &["2", "3", "M", &ns]);
    let z = p.temp(dtype, &["B", "M", &ns]);
    p.f.steps.push(matmul_step(a, w, y, true));
    p.f.steps.push(matmul_step(a2, v, z, false));
    p.out("y", y);
    p.out("z", z);
    let wv = Tensor::from_f32(&[3, n, k], ramp(3 * n * k, 1.0, 0.0)).cast(dtype);
    let vv = Tensor::from_f32(&[k, n], ramp(k * n, 1.5, 0.1)).cast(dtype);
    model(module, vec![], vec![p.f], vec![("w", wv), ("v", vv)])
}

#[test]
fn matmul_with_transposed_b_and_broadcast_batches() {
    for (m_, k, n) in [(1, 8, 5), (4, 3, 7), (33, 70, 40)] {
        let model = matmul_model(DType::F32, m_, k, n);
        for threads in [1, 3] {
            let a = Tensor::from_f32(&[2, 1, m_, k], ramp(2 * m_ * k, 2.0, 0.0));
            let a2 = Tensor::from_f32(&[4, m_, k], ramp(4 * m_ * k, 1.0, -0.3));
            let (got, want) = both(&model, vec![("a", a), ("a2", a2)], threads);
            assert_close(&got[0], &want[0], 1e-5);
            assert_close(&got[1], &want[1], 1e-5);
        }
    }
}

#[test]
fn big_matmuls_split_over_threads_give_the_same_bits() {
    let model = matmul_model(DType::F32, 150, 200, 260);
    let inputs = named(vec![
        ("a", Tensor::from_f32(&[2, 1, 150, 200], ramp(2 * 150 * 200, 2.0, 0.0))),
        ("a2", Tensor::from_f32(&[3, 150, 200], ramp(3 * 150 * 200, 1.0, -0.3))),
    ]);
    let one = session(&model, 1).run("f", &inputs).unwrap();
    for threads in [2, 4] {
        assert_eq!(session(&model, threads).run("f", &inputs).unwrap(), one);
    }
}

#[test]
fn integer_matmul_goes_through_the_reference() {
    let model = matmul_model(DType::I32, 3, 4, 2);
    let a = Tensor::from_i64_as(DType::I32, &[2, 1, 3, 4], (0..24).map(|i| i % 7 - 3).collect());
    let a2 = Tensor::from_i64_as(DType::I32, &[2, 3, 4], (0..24).map(|i| i % 5 - 2).collect());
    let (got, want) = both(&model, vec![("a", a), ("a2", a2)], 2);
    assert_eq!(got, want);
}

#[test]
fn matmul_with_an_empty_inner_axis_is_zero() {
    let model = matmul_model(DType::F32, 2, 0, 3);
    let a = Tensor::from_f32(&[2, 1, 2, 0], vec![]);
    let a2 = Tensor::from_f32(&[1, 2, 0], vec![]);
    let (got, want) = both(&model, vec![("a", a), ("a2", a2)], 2);
    assert_eq!(got, want);
}

// ---------------------------------------------------------------- loops

/// The body of the counting loop: `acc += step`, stop once `acc >= 6`, emit `acc` and `i`.
fn counting_body_graph() -> G {
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
    b
}

fn counting_body_plan() -> FunctionPlan {
    let mut p = P::new("body");
    let i = p.input("i", DType::I64, &[]);
    let acc = p.input("acc", DType::I64, &[]);
    let step = p.input("step", DType::I64, &[]);
    let six = p.constant(Literal::int(DType::I64, 6));
    let next = p.op(Op::Binary(BinaryOp::Add), &[acc, step], DType::I64, &[]);
    let stop = p.op(Op::Binary(BinaryOp::Ge), &[next, six], DType::Bool, &[]);
    p.out("acc", next);
    p.out("stop", stop);
    p.out("e", next);
    p.out("i", i);
    p.f
}

fn counting_loop(max_trips: u64) -> Model {
    let origin = at("decode", "m.dsl:9:5");
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
        body: counting_body_graph().g,
    };
    let id = g.g.add(Op::Loop(Box::new(l)), &[zero, two], origin.clone()).unwrap();
    for (k, name) in ["acc", "e", "i"].into_iter().enumerate() {
        g.out(
            name,
            Value {
                node: id,
                index: k as u32,
            },
        );
    }

    let mut p = P::new("f");
    let _x = p.input("x", DType::F32, &["N"]);
    let zero = p.constant(Literal::int(DType::I64, 0));
    let two = p.constant(Literal::int(DType::I64, 2));
    let acc = p.temp(DType::I64, &[]);
    let e = p.temp(DType::I64, &["N"]);
    let i = p.temp(DType::I64, &["N"]);
    p.f.steps.push(Step::Loop {
        trips: Dim::sym("N"),
        max_trips,
        n_carried: 1,
        has_stop: true,
        n_emit: 2,
        operands: vec![zero, two],
        outputs: vec![acc, e, i],
        body: Box::new(counting_body_plan()),
        origin,
    });
    p.out("acc", acc);
    p.out("e", e);
    p.out("i", i);
    model(module_of(g, vec![]), vec![], vec![p.f], vec![])
}

#[test]
fn loop_carries_stops_and_emits() {
    let m = counting_loop(10);
    for n in [5, 3, 2, 1, 0] {
        let (got, want) = both(&m, vec![("x", f32s(&[n], &vec![0.0; n]))], 2);
        assert_eq!(got, want, "N = {n}");
    }
    let (got, _) = both(&m, vec![("x", f32s(&[5], &[0.0; 5]))], 1);
    assert_eq!(got[1].as_i64().unwrap(), &[2, 4, 6, 0, 0]);
}

#[test]
fn loop_over_its_maximum_names_the_loop() {
    let m = counting_loop(3);
    let inputs = named(vec![("x", f32s(&[4], &[0.0; 4]))]);
    let err = session(&m, 1).run("f", &inputs).unwrap_err();
    assert!(matches!(err, RuntimeError::TooManyTrips { trips: 4, max: 3, .. }));
    assert_eq!(
        err.to_string(),
        "`loop` at `decode @ m.dsl:9:5`: 4 trips exceed the maximum of 3"
    );
    let oracle = run(m.module(), "f", m.weights(), &inputs, &RunOptions::default()).unwrap_err();
    assert_eq!(err.to_string(), oracle.to_string());
}

/// `out[p] = h[p] * 2 + x[p]` over `C` elements (dim 0).
fn axpy_kernel() -> KernelFn {
    let p = IExpr::Var(0);
    KernelFn {
        name: "axpy".into(),
        bufs: vec![rd("h", DType::F32), rd("x", DType::F32), wr("out", DType::F32)],
        dims: vec!["C".into()],
        parallel: (0, IExpr::Dim(0)),
        body: vec![KStmt::Store {
            buf: 2,
            index: p.clone(),
            value: bin(BinaryOp::Add, bin(BinaryOp::Mul, ld(0, p.clone()), f32c(2.0)), ld(1, p)),
        }],
    }
}

/// Outer loop (N trips) carrying `h: f32[C]`, capturing `x`; its body runs an inner loop of 3
/// trips (`h = 2h + x`, a kernel, emitting `h`) and emits the inner loop's stack, then adds
/// `sum(h)` to a carried scalar through an `Op` step.
fn nested_loops() -> Model {
    let two = || Op::Const(Literal::float(DType::F32, 2.0));
    // Graph IR.
    let mut inner = G::new();
    let _j = inner.input("j", DType::I64, &[]);
    let h = inner.input("h", DType::F32, &["C"]);
    let x = inner.input("x", DType::F32, &["C"]);
    let c2 = inner.op(two(), &[]);
    let h2 = inner.op(Op::Binary(BinaryOp::Mul), &[h, c2]);
    let h3 = inner.op(Op::Binary(BinaryOp::Add), &[h2, x]);
    inner.out("h", h3);
    inner.out("e", h3);

    let mut outer = G::new();
    let _i = outer.input("i", DType::I64, &[]);
    let h = outer.input("h", DType::F32, &["C"]);
    let total = outer.input("total", DType::F32, &[]);
    let x = outer.input("x", DType::F32, &["C"]);
    let l = LoopOp {
        trips: Dim::c(3),
        max_trips: 3,
        n_carried: 1,
        has_stop: false,
        n_emit: 1,
        body: inner.g,
    };
    let il = outer.g.add(Op::Loop(Box::new(l)), &[h, x], at("inner", "")).unwrap();
    let (hn, stack) = (Value { node: il, index: 0 }, Value { node: il, index: 1 });
    let s = outer.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![0],
            keepdim: false,
        },
        &[hn],
    );
    let t2 = outer.op(Op::Binary(BinaryOp::Add), &[total, s]);
    outer.out("h", hn);
    outer.out("total", t2);
    outer.out("stack", stack);

    let mut g = G::new();
    let h0 = g.input("h0", DType::F32, &["C"]);
    let x = g.input("x", DType::F32, &["C"]);
    let zero = g.op(Op::Const(Literal::float(DType::F32, 0.0)), &[]);
    let l = LoopOp {
        trips: Dim::sym("N"),
        max_trips: 8,
        n_carried: 2,
        has_stop: false,
        n_emit: 1,
        body: outer.g,
    };
    let ol = g.g.add(Op::Loop(Box::new(l)), &[h0, zero, x], at("outer", "")).unwrap();
    for (k, name) in ["h", "total", "stacks"].into_iter().enumerate() {
        g.out(
            name,
            Value {
                node: ol,
                index: k as u32,
            },
        );
    }
    // `N` is bound by an input of its own.
    let _steps = g.input("steps", DType::Bool, &["N"]);

    // The plan.
    let mut ip = P::new("inner");
    let _j = ip.input("j", DType::I64, &[]);
    let h = ip.input("h", DType::F32, &["C"]);
    let x = ip.input("x", DType::F32, &["C"]);
    let h3 = ip.temp(DType::F32, &["C"]);
    ip.kernel(0, &[h, x, h3], &["C"]);
    ip.out("h", h3);
    ip.out("e", h3);

    let mut op = P::new("outer");
    let _i = op.input("i", DType::I64, &[]);
    let h = op.input("h", DType::F32, &["C"]);
    let total = op.input("total", DType::F32, &[]);
    let x = op.input("x", DType::F32, &["C"]);
    let hn = op.temp(DType::F32, &["C"]);
    let stack = op.temp(DType::F32, &["3", "C"]);
    op.f.steps.push(Step::Loop {
        trips: Dim::c(3),
        max_trips: 3,
        n_carried: 1,
        has_stop: false,
        n_emit: 1,
        operands: vec![h, x],
        outputs: vec![hn, stack],
        body: Box::new(ip.f),
        origin: at("inner", ""),
    });
    let s = op.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![0],
            keepdim: false,
        },
        &[hn],
        DType::F32,
        &[],
    );
    let t2 = op.op(Op::Binary(BinaryOp::Add), &[total, s], DType::F32, &[]);
    op.out("h", hn);
    op.out("total", t2);
    op.out("stack", stack);

    let mut p = P::new("f");
    let h0 = p.input("h0", DType::F32, &["C"]);
    let x = p.input("x", DType::F32, &["C"]);
    let _steps = p.input("steps", DType::Bool, &["N"]);
    let zero = p.constant(Literal::float(DType::F32, 0.0));
    let hf = p.temp(DType::F32, &["C"]);
    let tf = p.temp(DType::F32, &[]);
    let stacks = p.temp(DType::F32, &["N", "3", "C"]);
    p.f.steps.push(Step::Loop {
        trips: Dim::sym("N"),
        max_trips: 8,
        n_carried: 2,
        has_stop: false,
        n_emit: 1,
        operands: vec![h0, zero, x],
        outputs: vec![hf, tf, stacks],
        body: Box::new(op.f),
        origin: at("outer", ""),
    });
    p.out("h", hf);
    p.out("total", tf);
    p.out("stacks", stacks);
    model(module_of(g, vec![]), vec![axpy_kernel()], vec![p.f], vec![])
}

#[test]
fn nested_loops_with_a_kernel_inside() {
    let m = nested_loops();
    for (n, c) in [(2, 3), (0, 4), (4, 1)] {
        let inputs = vec![
            ("h0", Tensor::from_f32(&[c], ramp(c, 1.0, 0.0))),
            ("x", Tensor::from_f32(&[c], ramp(c, 0.5, 0.25))),
            ("steps", Tensor::from_bool(&[n], vec![true; n])),
        ];
        let (got, want) = both(&m, inputs, 2);
        assert_eq!(got, want, "N = {n}, C = {c}");
    }
}

// ---------------------------------------------------------------- the arena

/// `s = sum(relu(x + w), 1)` with `relu(x + w)` an intermediate (in the arena), `x: f32[N, c]`.
fn bias_relu_sum_intermediate(c: usize) -> Model {
    let cs = c.to_string();
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["N", &cs]);
    let w = g.g.add_typed(
        Op::Param { name: "w".into() },
        &[],
        vec![ty(DType::F32, &[&cs])],
        Origin::default(),
    );
    let h = g.op(Op::Binary(BinaryOp::Add), &[x, Value::of(w)]);
    let zero = g.op(Op::Const(Literal::float(DType::F32, 0.0)), &[]);
    let y = g.op(Op::Binary(BinaryOp::Max), &[h, zero]);
    let s = g.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![1],
            keepdim: false,
        },
        &[y],
    );
    g.out("s", s);

    let mut p = P::new("f");
    let x = p.input("x", DType::F32, &["N", &cs]);
    let w = p.param("w", DType::F32, &[&cs]);
    let y = p.temp(DType::F32, &["N", &cs]);
    let s = p.temp(DType::F32, &["N"]);
    p.kernel(0, &[x, w, y], &["N", &cs]);
    p.kernel(1, &[y, s], &["N", &cs]);
    p.out("s", s);
    model(
        module_of(g, vec![param_decl("w", DType::F32, &[c as u64])]),
        vec![bias_relu_kernel(), row_sum_kernel()],
        vec![p.f],
        vec![("w", Tensor::from_f32(&[c], ramp(c, 2.0, -0.2)))],
    )
}

#[test]
fn one_arena_serves_runs_with_changing_dims() {
    let m = bias_relu_sum_intermediate(16);
    let mut s = session(&m, 2);
    assert_eq!(s.arena_bytes(), 0);
    let mut largest = 0;
    for n in [7, 3000, 7, 0, 3000, 1, 3000] {
        let inputs = named(vec![("x", Tensor::from_f32(&[n, 16], ramp(n * 16, 4.0, 0.1)))]);
        let got = s.run("f", &inputs).unwrap();
        let want = run(m.module(), "f", m.weights(), &inputs, &RunOptions::default()).unwrap();
        assert_close(&got[0].1, &want[0].1, 1e-5);
        // A reused arena gives the bits of a fresh session.
        assert_eq!(got, session(&m, 1).run("f", &inputs).unwrap(), "N = {n}");
        // The intermediate `y` (N * 16 floats) is in the arena; the output `s` is not.
        assert!(s.arena_bytes() >= n * 16 * 4, "N = {n}");
        // The allocation grows with the largest layout seen and never shrinks.
        assert!(s.arena_bytes() >= largest);
        largest = largest.max(s.arena_bytes());
    }
    assert_eq!(largest, 3000 * 16 * 4);
}

#[test]
fn run_into_reuses_the_output_allocations() {
    let m = bias_relu_sum_with_weight(16);
    let mut s = session(&m, 2);
    let mut out = Vec::new();
    let mut last_ptr = None;
    for (k, n) in [300, 300, 7, 300].into_iter().enumerate() {
        let inputs = named(vec![("x", Tensor::from_f32(&[n, 16], ramp(n * 16, 4.0, k as f32)))]);
        s.run_into("f", &inputs, &mut out).unwrap();
        assert_eq!(out, session(&m, 1).run("f", &inputs).unwrap(), "run {k}");
        let ptr = out[0].1.as_f32().unwrap().as_ptr();
        if k == 1 {
            assert_eq!(Some(ptr), last_ptr, "the same size reuses the allocation");
        }
        last_ptr = Some(ptr);
    }
    let bad = named(vec![("x", Tensor::from_f32(&[2, 3], vec![0.0; 6]))]);
    assert!(s.run_into("f", &bad, &mut out).is_err());
    assert!(out.is_empty());
}

/// A loop carrying `x` and `prev`: `next x = 2x + c` (a kernel, in the body's region),
/// `next prev = x` (passed through unchanged, so two iterations later it points into the
/// region being written), emitting `prev`; around it, kernels in the entry's region.
fn carried_passthrough_loop() -> Model {
    let axpy_g = |g: &mut G, h: Value, x: Value| {
        let two = g.op(Op::Const(Literal::float(DType::F32, 2.0)), &[]);
        let h2 = g.op(Op::Binary(BinaryOp::Mul), &[h, two]);
        g.op(Op::Binary(BinaryOp::Add), &[h2, x])
    };
    let mut body = G::new();
    let _i = body.input("i", DType::I64, &[]);
    let x = body.input("x", DType::F32, &["C"]);
    let prev = body.input("prev", DType::F32, &["C"]);
    let c = body.input("c", DType::F32, &["C"]);
    let x3 = axpy_g(&mut body, x, c);
    body.out("x", x3);
    body.out("prev", x);
    body.out("e", prev);

    let mut g = G::new();
    let x0 = g.input("x0", DType::F32, &["C"]);
    let c = g.input("c", DType::F32, &["C"]);
    let _steps = g.input("steps", DType::Bool, &["N"]);
    let p0 = axpy_g(&mut g, x0, c);
    let l = LoopOp {
        trips: Dim::sym("N"),
        max_trips: 8,
        n_carried: 2,
        has_stop: false,
        n_emit: 1,
        body: body.g,
    };
    let id = g.g.add(Op::Loop(Box::new(l)), &[x0, p0, c], at("loop", "")).unwrap();
    let out = |k: u32| Value { node: id, index: k };
    let r = axpy_g(&mut g, out(0), out(1));
    g.out("r", r);
    g.out("stack", out(2));

    let mut bp = P::new("body");
    let _i = bp.input("i", DType::I64, &[]);
    let x = bp.input("x", DType::F32, &["C"]);
    let prev = bp.input("prev", DType::F32, &["C"]);
    let c = bp.input("c", DType::F32, &["C"]);
    let x3 = bp.temp(DType::F32, &["C"]);
    bp.kernel(0, &[x, c, x3], &["C"]);
    bp.out("x", x3);
    bp.out("prev", x);
    bp.out("e", prev);

    let mut p = P::new("f");
    let x0 = p.input("x0", DType::F32, &["C"]);
    let c = p.input("c", DType::F32, &["C"]);
    let _steps = p.input("steps", DType::Bool, &["N"]);
    let p0 = p.temp(DType::F32, &["C"]);
    p.kernel(0, &[x0, c, p0], &["C"]);
    let (xf, pf, stack) = (
        p.temp(DType::F32, &["C"]),
        p.temp(DType::F32, &["C"]),
        p.temp(DType::F32, &["N", "C"]),
    );
    p.f.steps.push(Step::Loop {
        trips: Dim::sym("N"),
        max_trips: 8,
        n_carried: 2,
        has_stop: false,
        n_emit: 1,
        operands: vec![x0, p0, c],
        outputs: vec![xf, pf, stack],
        body: Box::new(bp.f),
        origin: at("loop", ""),
    });
    let r = p.temp(DType::F32, &["C"]);
    p.kernel(0, &[xf, pf, r], &["C"]);
    p.out("r", r);
    p.out("stack", stack);
    model(module_of(g, vec![]), vec![axpy_kernel()], vec![p.f], vec![])
}

#[test]
fn carried_values_survive_the_double_buffered_body_regions() {
    let m = carried_passthrough_loop();
    let mut s = session(&m, 2);
    for (n, c) in [(0, 3), (1, 3), (2, 5), (3, 5), (6, 4), (8, 1), (5, 64)] {
        let inputs = named(vec![
            ("x0", Tensor::from_f32(&[c], ramp(c, 1.0, 0.0))),
            ("c", Tensor::from_f32(&[c], ramp(c, 0.5, 0.25))),
            ("steps", Tensor::from_bool(&[n], vec![true; n])),
        ]);
        let got = s.run("f", &inputs).unwrap();
        let want = run(m.module(), "f", m.weights(), &inputs, &RunOptions::default()).unwrap();
        assert_eq!(got, want, "N = {n}, C = {c}");
    }
}

// ---------------------------------------------------------------- the API

#[test]
fn model_is_send_and_sync_and_sessions_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Model>();
    send::<Session>();
}

#[test]
fn sessions_run_concurrently_with_identical_bits() {
    let m = Arc::new(bias_relu_sum_with_weight(8));
    let mm = matmul_model(DType::F32, 9, 24, 17);
    let input = |seed: usize| {
        let n = 50 + seed * 13;
        named(vec![(
            "x",
            Tensor::from_f32(&[n, 8], ramp(n * 8, 1.0 + seed as f32, seed as f32 * 0.01)),
        )])
    };
    let mm_input = |seed: usize| {
        named(vec![
            (
                "a",
                Tensor::from_f32(&[2, 1, 9, 24], ramp(2 * 9 * 24, 1.0, seed as f32 * 0.1)),
            ),
            (
                "a2",
                Tensor::from_f32(&[1 + seed % 3, 9, 24], ramp((1 + seed % 3) * 9 * 24, 2.0, 0.0)),
            ),
        ])
    };
    // Single-threaded results first.
    let mut s1 = session(&m, 1);
    let mut s2 = session(&mm, 1);
    let expected: Vec<_> = (0..80)
        .map(|i| (s1.run("f", &input(i)).unwrap(), s2.run("f", &mm_input(i)).unwrap()))
        .collect();
    let expected = Arc::new(expected);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let (m, mm, expected) = (m.clone(), mm.clone(), expected.clone());
            std::thread::spawn(move || {
                let mut s1 = session(&m, 2);
                let mut s2 = session(&mm, 2);
                for r in 0..20 {
                    let i = t * 20 + r;
                    assert_eq!(s1.run("f", &input(i)).unwrap(), expected[i].0, "run {i}");
                    assert_eq!(s2.run("f", &mm_input(i)).unwrap(), expected[i].1, "run {i}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn inputs_are_checked_as_by_the_interpreter() {
    let m = bias_relu_sum_with_weight(4);
    let mut s = session(&m, 1);
    let cases = vec![
        named(vec![]),
        named(vec![("x", f32s(&[2, 3], &[0.0; 6]))]),
        named(vec![("x", i64s(&[2, 4], &[0; 8]))]),
        named(vec![("x", f32s(&[2, 4], &[0.0; 8])), ("y", f32s(&[1], &[0.0]))]),
    ];
    for inputs in cases {
        let err = s.run("f", &inputs).unwrap_err();
        let oracle = run(m.module(), "f", m.weights(), &inputs, &RunOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), oracle.to_string());
    }
    let err = s.run("g", &named(vec![])).unwrap_err();
    assert!(matches!(err, RuntimeError::UnknownEntry { .. }), "{err}");
}

#[test]
fn a_session_needs_every_weight() {
    let base = bias_relu_sum_with_weight(4);
    let m = Model::from_plan(base.module().clone(), base.plan().clone()).unwrap();
    let err = m.session().unwrap_err();
    assert!(err.to_string().contains("weight `w`"), "{err}");
}

#[test]
fn malformed_plans_are_refused_at_load() {
    let base = bias_relu_sum_with_weight(4);
    // A kernel that writes the weight.
    let mut plan = base.plan().clone();
    if let Step::Kernel { bufs, .. } = &mut plan.functions[0].steps[0] {
        bufs.swap(1, 2);
    }
    let err = Model::from_plan(base.module().clone(), plan).unwrap_err();
    assert!(matches!(err, RuntimeError::Plan { .. }), "{err}");
    // A kernel that does not exist, a buffer out of range.
    let mut plan = base.plan().clone();
    if let Step::Kernel { kernel, .. } = &mut plan.functions[0].steps[1] {
        *kernel = 7;
    }
    assert!(matches!(
        Model::from_plan(base.module().clone(), plan),
        Err(RuntimeError::Plan { .. })
    ));
    let mut plan = base.plan().clone();
    plan.functions[0].outputs[0].1 = 99;
    assert!(matches!(
        Model::from_plan(base.module().clone(), plan),
        Err(RuntimeError::Plan { .. })
    ));
}

#[test]
fn a_buffer_read_before_it_is_written_is_an_error() {
    let base = bias_relu_sum_with_weight(4);
    let mut plan = base.plan().clone();
    plan.functions[0].steps.remove(0);
    let mut m = Model::from_plan(base.module().clone(), plan).unwrap();
    m.set_weights(base.weights().clone());
    let err = session(&m, 1)
        .run("f", &named(vec![("x", f32s(&[1, 4], &[0.0; 4]))]))
        .unwrap_err();
    assert!(err.to_string().contains("read before it is written"), "{err}");
}

#[test]
fn from_module_plans_with_the_scheduler() {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["B", "3"]);
    let e = g.op(Op::Unary(mlc_ir::UnaryOp::Exp), &[x]);
    let s = g.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![1],
            keepdim: true,
        },
        &[e],
    );
    let y = g.op(Op::Binary(BinaryOp::Div), &[e, s]);
    g.out("y", y);
    let module = g.module();
    let m = Model::from_module(module).unwrap();
    let x = Tensor::from_f32(&[2, 3], vec![0.0, 1.0, 2.0, -1.0, 0.5, 3.0]);
    let (got, want) = both(&m, vec![("x", x)], 2);
    assert_close(&got[0], &want[0], 1e-6);
}

#[test]
fn load_with_weights_reads_a_package_and_a_checkpoint() {
    // y = x @ wᵀ + b, planned by the scheduler.
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["B", "3"]);
    let w = g.g.add_typed(
        Op::Param { name: "w".into() },
        &[],
        vec![ty(DType::F32, &["2", "3"])],
        Origin::default(),
    );
    let b = g.g.add_typed(
        Op::Param { name: "b".into() },
        &[],
        vec![ty(DType::F32, &["2"])],
        Origin::default(),
    );
    let wt = g.op(Op::Permute(vec![1, 0]), &[Value::of(w)]);
    let xw = g.op(Op::MatMul, &[x, wt]);
    let y = g.op(Op::Binary(BinaryOp::Add), &[xw, Value::of(b)]);
    g.out("y", y);
    let module = module_of(
        g,
        vec![param_decl("b", DType::F32, &[2]), param_decl("w", DType::F32, &[2, 3])],
    );
    let dir = std::env::temp_dir().join(format!("mlc-cpu-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pkg, ckpt) = (dir.join("m.mlcpkg"), dir.join("m.safetensors"));
    mlc_runtime::package::save(&pkg, &module).unwrap();
    let weights = named(vec![
        ("w", f32s(&[2, 3], &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5])),
        ("b", f32s(&[2], &[0.25, -0.25])),
    ]);
    mlc_runtime::safetensors_io::save(&ckpt, &weights).unwrap();

    let model = Model::load_with_weights(&pkg, &ckpt).unwrap();
    let mut s = model.session().unwrap();
    let out = s
        .run(
            "f",
            &named(vec![("x", f32s(&[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.0, 1.0]))]),
        )
        .unwrap();
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1, f32s(&[2, 2], &[-1.75, 2.75, -1.75, -0.25]));

    // Without weights, a session lists what is missing; a damaged package is refused.
    let err = Model::load(&pkg).unwrap().session().unwrap_err();
    assert!(
        err.to_string().contains("weight `b`") && err.to_string().contains("weight `w`"),
        "{err}"
    );
    std::fs::write(&pkg, "not a package").unwrap();
    assert!(Model::load(&pkg).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `y = a @ transpose(w)` with a rank-2 Linear weight `w: [N, K]` and `a: [B, M, K]`.
fn linear_model(k: usize, n: usize) -> Model {
    let (ks, ns) = (k.to_string(), n.to_string());
    let mut g = G::new();
    let a = g.input("a", DType::F32, &["B", "M", &ks]);
    let w = g.g.add_typed(
        Op::Param { name: "w".into() },
        &[],
        vec![ty(DType::F32, &[&ns, &ks])],
        Origin::default(),
    );
    let wt = g.op(Op::Permute(vec![1, 0]), &[Value::of(w)]);
    let y = g.op(Op::MatMul, &[a, wt]);
    g.out("y", y);
    let module = module_of(g, vec![param_decl("w", DType::F32, &[n as u64, k as u64])]);
    let mut p = P::new("f");
    let a = p.input("a", DType::F32, &["B", "M", &ks]);
    let w = p.param("w", DType::F32, &[&ns, &ks]);
    let y = p.temp(DType::F32, &["B", "M", &ns]);
    p.f.steps.push(matmul_step(a, w, y, true));
    p.out("y", y);
    let wv = Tensor::from_f32(&[n, k], ramp(n * k, 1.0, 0.05));
    model(module, vec![], vec![p.f], vec![("w", wv)])
}

/// Products with more than `SKINNY_M` rows in all (`B * M`, even when each `M` is small) use the
/// weight packed once for the model: the same results as the interpreter on the first run, on
/// later runs (from the cache), and from sessions on several threads at once.
#[test]
fn linear_weights_packed_once_give_the_interpreters_results() {
    let model = linear_model(70, 45);
    for (b, m) in [(1, 1), (3, 7), (40, 1), (2, 33)] {
        let a = || Tensor::from_f32(&[b, m, 70], ramp(b * m * 70, 2.0, -0.1));
        let mut first = None;
        for threads in [1, 2] {
            for _ in 0..2 {
                let (got, want) = both(&model, vec![("a", a())], threads);
                assert_close(&got[0], &want[0], 1e-5);
                // The first long product packs `B` itself, later ones use the packed weight:
                // the same bits.
                assert_eq!(got[0], *first.get_or_insert_with(|| got[0].clone()), "B={b}, M={m}");
            }
        }
    }
    // One pack of `w` served every run with more than 16 rows.
    let weights = format!("{:?}", model.weights());
    assert!(weights.contains("PackedCache(1 packed)"), "{weights}");
    let inputs = named(vec![("a", Tensor::from_f32(&[5, 9, 70], ramp(5 * 9 * 70, 1.0, 0.2)))]);
    let want = run(model.module(), "f", model.weights(), &inputs, &RunOptions::default()).unwrap();
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| session(&model, 1).run("f", &inputs).unwrap()))
            .collect();
        for r in runs {
            assert_close(&r.join().unwrap()[0].1, &want[0].1, 1e-5);
        }
    });
}
