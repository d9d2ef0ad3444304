//! Small modules built programmatically with `Graph::add`, shared by the integration tests.
#![allow(dead_code)]

use mlc_ir::*;

pub fn d(s: &str) -> Dim {
    Dim::parse(s).unwrap()
}

pub fn ty(dtype: DType, dims: &[&str]) -> TensorType {
    TensorType::new(dtype, dims.iter().map(|s| d(s)).collect())
}

pub fn o(name: &str, loc: &str) -> Origin {
    Origin {
        name: name.into(),
        loc: loc.into(),
    }
}

pub fn v(n: NodeId) -> Value {
    Value::of(n)
}

pub fn decl(name: &str, dtype: DType, shape: &[u64], init: Init) -> ParamDecl {
    ParamDecl {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        init,
    }
}

/// Adds a `param` node typed like its declaration.
pub fn param(g: &mut Graph, p: &ParamDecl) -> NodeId {
    let t = TensorType::new(p.dtype, p.shape.iter().map(|&s| Dim::c(s as i64)).collect());
    g.add_typed(Op::Param { name: p.name.clone() }, &[], vec![t], o(&p.name, ""))
}

/// Adds an op, panicking on a type error (tests build well-typed graphs).
pub fn add(g: &mut Graph, op: Op, operands: &[Value]) -> NodeId {
    g.add(op, operands, Origin::default()).unwrap()
}

pub fn konst(g: &mut Graph, lit: Literal) -> NodeId {
    add(g, Op::Const(lit), &[])
}

pub fn f32s(shape: &[u64], data: &[f32]) -> Literal {
    Literal {
        dtype: DType::F32,
        shape: shape.to_vec(),
        data: LiteralData::Float(data.iter().map(|x| *x as f64).collect()),
    }
}

pub fn i32s(shape: &[u64], data: &[i64]) -> Literal {
    Literal {
        dtype: DType::I32,
        shape: shape.to_vec(),
        data: LiteralData::Int(data.to_vec()),
    }
}

pub fn module(name: &str, params: Vec<ParamDecl>, functions: Vec<(&str, Graph)>) -> Module {
    Module {
        name: name.into(),
        params,
        functions: functions
            .into_iter()
            .map(|(n, graph)| Function { name: n.into(), graph })
            .collect(),
    }
}

/// A two-layer MLP: `y = tanh(x @ w1 + b1) @ w2 + b2`, with origins.
pub fn mlp() -> Module {
    let p = vec![
        decl("l1.b", DType::F32, &[8], Init::Fill(0.0)),
        decl("l1.w", DType::F32, &[4, 8], Init::Normal(0.08)),
        decl("l2.b", DType::F32, &[2], Init::Fill(1.0)),
        decl("l2.w", DType::F32, &[8, 2], Init::Uniform(0.1)),
    ];
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["B", "4"]));
    let w1 = param(&mut g, &p[1]);
    let b1 = param(&mut g, &p[0]);
    let h = g.add(Op::MatMul, &[v(x), v(w1)], o("h", "mlp.dsl:7:5")).unwrap();
    let h = g
        .add(Op::Binary(BinaryOp::Add), &[v(h), v(b1)], o("h", "mlp.dsl:7:5"))
        .unwrap();
    let h = g.add(Op::Unary(UnaryOp::Tanh), &[v(h)], o("h", "mlp.dsl:8:5")).unwrap();
    let w2 = param(&mut g, &p[3]);
    let b2 = param(&mut g, &p[2]);
    let y = add(&mut g, Op::MatMul, &[v(h), v(w2)]);
    let y = add(&mut g, Op::Binary(BinaryOp::Add), &[v(y), v(b2)]);
    g.outputs.push(("y".into(), v(y)));
    module("Mlp", p, vec![("forward", g)])
}

/// A decode loop: carried `h`, a stop flag, an emitted argmax; then a top-k of the result.
pub fn decoder() -> Module {
    let p = vec![decl("w", DType::F32, &[8, 8], Init::Normal(0.1))];
    let mut body = Graph::new();
    let _i = body.add_input("i", ty(DType::I64, &[]));
    let h = body.add_input("h", ty(DType::F32, &["B", "8"]));
    let w = body.add_input("w", ty(DType::F32, &["8", "8"]));
    let hw = add(&mut body, Op::MatMul, &[v(h), v(w)]);
    let h2 = body
        .add(Op::Unary(UnaryOp::Tanh), &[v(hw)], o("h", "dec.dsl:4:9"))
        .unwrap();
    let one = konst(&mut body, Literal::float(DType::F32, 0.5));
    let big = add(&mut body, Op::Binary(BinaryOp::Gt), &[v(h2), v(one)]);
    let stop = add(
        &mut body,
        Op::Reduce {
            op: ReduceOp::All,
            axes: vec![0, 1],
            keepdim: false,
        },
        &[v(big)],
    );
    let pick = add(
        &mut body,
        Op::ArgReduce {
            op: ArgOp::ArgMax,
            axis: 1,
            keepdim: false,
        },
        &[v(h2)],
    );
    body.outputs = vec![("h".into(), v(h2)), ("stop".into(), v(stop)), ("pick".into(), v(pick))];

    let mut g = Graph::new();
    let h0 = g.add_input("h0", ty(DType::F32, &["B", "8"]));
    let w = param(&mut g, &p[0]);
    let lp = Op::Loop(Box::new(LoopOp {
        trips: d("N"),
        max_trips: 64,
        n_carried: 1,
        has_stop: true,
        n_emit: 1,
        body,
    }));
    let l = g.add(lp, &[v(h0), v(w)], o("decode", "dec.dsl:3:5")).unwrap();
    let top = add(
        &mut g,
        Op::TopK {
            k: d("3"),
            axis: 1,
            largest: true,
        },
        &[v(l)],
    );
    g.outputs = vec![
        ("picks".into(), Value { node: l, index: 1 }),
        ("h".into(), v(l)),
        ("top".into(), Value { node: top, index: 1 }),
    ];
    module("Decoder", p, vec![("greedy", g)])
}

/// Every op at least once (all unary, binary, reduce and arg variants), consts of every kind,
/// a loop, odd names and origins.
pub fn kitchen_sink() -> Module {
    use DType::*;
    let p = vec![
        decl("w", F32, &[4, 8], Init::Fill(2.5)),
        decl("odd-name w", F32, &[4], Init::Fill(-0.0)),
    ];
    let mut g = Graph::new();
    let x = v(g.add_input("x", ty(F32, &["B", "4"])));
    let m = v(g.add_input("m", ty(Bool, &["B", "4"])));
    let idx = v(g.add_input("idx", ty(I64, &["B", "2"])));
    let seed = v(g.add_input("seed", ty(I64, &[])));
    let ints = v(g.add_input("", ty(I32, &["B", "4"])));
    let mut outs: Vec<Value> = vec![];
    for u in Op::UNARY {
        let operand = if u == UnaryOp::Not { m } else { x };
        outs.push(v(add(&mut g, Op::Unary(u), &[operand])));
    }
    outs.push(v(add(&mut g, Op::Unary(UnaryOp::Neg), &[ints])));
    for b in Op::BINARY {
        let operand = if b.is_logical() { m } else { x };
        outs.push(v(add(&mut g, Op::Binary(b), &[operand, operand])));
    }
    outs.push(v(add(&mut g, Op::Binary(BinaryOp::Rem), &[ints, ints])));
    outs.push(v(add(&mut g, Op::Select, &[m, x, x])));
    outs.push(v(add(&mut g, Op::Cast(I32), &[x])));
    for (r, axes, keepdim) in [
        (ReduceOp::Sum, vec![1], false),
        (ReduceOp::Prod, vec![0], true),
        (ReduceOp::Max, vec![], false),
        (ReduceOp::Min, vec![0, 1], false),
    ] {
        outs.push(v(add(&mut g, Op::Reduce { op: r, axes, keepdim }, &[x])));
    }
    for r in [ReduceOp::Any, ReduceOp::All] {
        let op = Op::Reduce {
            op: r,
            axes: vec![0, 1],
            keepdim: true,
        };
        outs.push(v(add(&mut g, op, &[m])));
    }
    for (a, keepdim) in [(ArgOp::ArgMax, false), (ArgOp::ArgMin, true)] {
        outs.push(v(add(
            &mut g,
            Op::ArgReduce {
                op: a,
                axis: 1,
                keepdim,
            },
            &[x],
        )));
    }
    let bsize = v(add(&mut g, Op::DimSize(d("2*B*T + 1")), &[]));
    outs.push(v(add(&mut g, Op::Reshape(vec![d("4"), d("B")]), &[x])));
    outs.push(v(add(&mut g, Op::Permute(vec![1, 0]), &[x])));
    outs.push(v(add(&mut g, Op::Expand(vec![d("2"), d("B"), d("4")]), &[x])));
    let slice = Op::Slice {
        axis: 1,
        start: d("1"),
        end: d("3"),
        step: 2,
    };
    outs.push(v(add(&mut g, slice, &[x])));
    outs.push(v(add(&mut g, Op::Concat { axis: 1 }, &[x, x, x])));
    let pad = Op::Pad {
        axis: 1,
        before: 1,
        after: 2,
        value: f64::NEG_INFINITY,
    };
    outs.push(v(add(&mut g, pad, &[x])));
    let w = v(param(&mut g, &p[0]));
    outs.push(v(add(&mut g, Op::MatMul, &[x, w])));
    let odd = v(param(&mut g, &p[1]));
    outs.push(v(add(&mut g, Op::Binary(BinaryOp::Mul), &[x, odd])));
    let gathered = v(add(&mut g, Op::Gather { axis: 1 }, &[x, idx]));
    outs.push(gathered);
    outs.push(v(add(&mut g, Op::Take { axis: 1 }, &[x, idx])));
    outs.push(v(add(&mut g, Op::Scatter { axis: 1 }, &[x, idx, gathered])));
    let ds = Op::DynamicSlice { axis: 1, size: d("2") };
    outs.push(v(add(&mut g, ds, &[x, bsize])));
    outs.push(v(add(
        &mut g,
        Op::DynamicUpdateSlice { axis: 1 },
        &[x, gathered, bsize],
    )));
    let iota = Op::Iota {
        shape: vec![d("B"), d("4")],
        axis: 1,
        dtype: I64,
    };
    outs.push(v(add(&mut g, iota, &[])));
    let cumsum = Op::Cumsum {
        axis: 1,
        exclusive: true,
        reverse: false,
    };
    outs.push(v(add(&mut g, cumsum, &[x])));
    let topk = Op::TopK {
        k: d("2"),
        axis: 1,
        largest: false,
    };
    let t = add(&mut g, topk, &[x]);
    outs.push(Value { node: t, index: 1 });
    let rng = Op::RngUniform {
        shape: vec![d("B"), d("N - 1")],
    };
    outs.push(v(add(&mut g, rng, &[seed, bsize])));
    let consts = [
        Literal::float(F32, 0.5),
        f32s(&[6], &[0.1, f32::INFINITY, f32::NEG_INFINITY, -0.0, 1e-7, 3.0e38]),
        i32s(&[2, 2], &[1, -2, 2147483647, -2147483648]),
        Literal::int(I64, -9223372036854775808),
        Literal {
            dtype: Bool,
            shape: vec![3],
            data: LiteralData::Bool(vec![true, false, true]),
        },
        Literal {
            dtype: F32,
            shape: vec![0, 3],
            data: LiteralData::Float(vec![]),
        },
    ];
    for c in consts {
        outs.push(v(konst(&mut g, c)));
    }
    let weird = g
        .add(Op::Unary(UnaryOp::Exp), &[x], o("a@b \"q\"", " spaced loc "))
        .unwrap();
    outs.push(v(weird));
    let only_loc = g.add(Op::Unary(UnaryOp::Exp), &[x], o("", "k.dsl:1:1")).unwrap();
    outs.push(v(only_loc));
    let ms = g.add_input("plain", ty(F32, &["B", "4"]));
    g.dag[ms].origin = Origin::default();
    outs.push(v(ms));
    let dec = decoder();
    let dec_loop = dec.functions[0]
        .graph
        .dag
        .node_indices()
        .find(|n| matches!(dec.functions[0].graph.dag[*n].op, Op::Loop(_)));
    let lp = dec.functions[0].graph.dag[dec_loop.unwrap()].op.clone();
    let xx = v(add(&mut g, Op::Concat { axis: 1 }, &[x, x]));
    let h0 = v(add(&mut g, Op::Reshape(vec![d("B"), d("8")]), &[xx]));
    let wide = v(add(&mut g, Op::Expand(vec![d("16"), d("4")]), &[odd]));
    let wl = v(add(&mut g, Op::Reshape(vec![d("8"), d("8")]), &[wide]));
    let l = add(&mut g, lp, &[h0, wl]);
    outs.push(Value { node: l, index: 1 });
    g.outputs = outs.iter().enumerate().map(|(i, v)| (format!("o{i}"), *v)).collect();
    g.outputs.push(("odd name".into(), x));
    let mlp = mlp();
    let mut params = p;
    params.extend(mlp.params.iter().cloned());
    module(
        "Kitchen Sink",
        params,
        vec![("all", g), ("mlp", mlp.functions[0].graph.clone())],
    )
}
