//! The passes: each does what it says on a small example and keeps the module verifying.

mod common;
use common::*;
use mlc_ir::passes::{Canonicalize, ConstFold, Cse, Dce, MatVec, PASS_NAMES, run_on_module};
use mlc_ir::*;

/// Runs one pass over the module, verifying before and after, and returns the printed result.
fn apply(pass: &dyn Pass, m: &mut Module) -> String {
    verify_module(m).unwrap();
    run_on_module(pass, m);
    verify_module(m).unwrap_or_else(|e| panic!("{} broke the module: {e:?}\n{}", pass.name(), print_module(m)));
    let text = print_module(m);
    assert_eq!(print_module(&parse_module(&text).unwrap()), text);
    text
}

/// The body lines of the first function, without indentation.
fn body(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("func"))
        .skip(1)
        .take_while(|l| *l != "}")
        .map(|l| l.trim().to_string())
        .collect()
}

fn one_fn(g: Graph) -> Module {
    module("T", vec![], vec![("f", g)])
}

fn out(g: &mut Graph, name: &str, n: NodeId) {
    g.outputs.push((name.into(), v(n)));
}

#[test]
fn canonicalize_removes_identities_and_folds_chains() {
    use DType::F32;
    let mut g = Graph::new();
    let x = v(g.add_input("x", ty(F32, &["B", "4"])));
    let y = v(g.add_input("y", ty(F32, &["4"])));
    let t = v(g.add_input("t", ty(F32, &["B", "4", "2"])));
    let mut cur = x;
    for op in [
        Op::Reshape(vec![d("B"), d("4")]),
        Op::Permute(vec![0, 1]),
        Op::Expand(vec![d("B"), d("4")]),
        Op::Cast(F32),
        Op::Slice {
            axis: 1,
            start: d("0"),
            end: d("4"),
            step: 1,
        },
        Op::Concat { axis: 1 },
        Op::Pad {
            axis: 0,
            before: 0,
            after: 0,
            value: 0.0,
        },
    ] {
        cur = v(add(&mut g, op, &[cur]));
    }
    let zero = v(konst(&mut g, Literal::float(F32, 0.0)));
    let ones = v(konst(&mut g, f32s(&[4], &[1.0; 4])));
    let a = v(add(&mut g, Op::Binary(BinaryOp::Add), &[zero, cur]));
    let m = add(&mut g, Op::Binary(BinaryOp::Mul), &[a, ones]);
    out(&mut g, "same", m);
    // Broadcasting: y + zeros[2, 4] has another type than y, so it stays (with the const on the right).
    let zeros = v(konst(&mut g, f32s(&[2, 4], &[0.0; 8])));
    let b = add(&mut g, Op::Binary(BinaryOp::Add), &[zeros, y]);
    out(&mut g, "bcast", b);
    // A slice that is not the whole axis stays.
    let part = Op::Slice {
        axis: 1,
        start: d("0"),
        end: d("3"),
        step: 1,
    };
    let s = add(&mut g, part, &[x]);
    out(&mut g, "part", s);
    // reshape(reshape(x)) and permute(permute(t)).
    let r1 = v(add(&mut g, Op::Reshape(vec![d("2"), d("2"), d("B")]), &[x]));
    let r2 = add(&mut g, Op::Reshape(vec![d("4"), d("B")]), &[r1]);
    out(&mut g, "rr", r2);
    let p1 = v(add(&mut g, Op::Permute(vec![2, 0, 1]), &[t]));
    let p2 = add(&mut g, Op::Permute(vec![1, 0, 2]), &[p1]);
    out(&mut g, "pp", p2);
    let q1 = v(add(&mut g, Op::Permute(vec![2, 0, 1]), &[t]));
    let q2 = add(&mut g, Op::Permute(vec![1, 2, 0]), &[q1]);
    out(&mut g, "pp_id", q2);
    // A constant on the left of a commutative op moves right; `sub` is not commutative.
    let two = v(konst(&mut g, Literal::float(F32, 2.0)));
    let c = add(&mut g, Op::Binary(BinaryOp::Mul), &[two, x]);
    out(&mut g, "mul", c);
    let c = add(&mut g, Op::Binary(BinaryOp::Sub), &[two, x]);
    out(&mut g, "sub", c);

    let mut m = one_fn(g);
    let text = apply(&Canonicalize, &mut m);
    assert_eq!(
        body(&text),
        [
            "%0 = input \"x\" : f32[B, 4]",
            "%1 = input \"y\" : f32[4]",
            "%2 = input \"t\" : f32[B, 4, 2]",
            "%3 = const f32[2, 4] [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0] : f32[2, 4]",
            "%4 = add %1, %3 : f32[2, 4]",
            "%5 = slice(axis=1, start=0, end=3, step=1) %0 : f32[B, 3]",
            "%6 = reshape([4, B]) %0 : f32[4, B]",
            "%7 = permute([0, 2, 1]) %2 : f32[B, 2, 4]",
            "%8 = const f32 2.0 : f32[]",
            "%9 = mul %0, %8 : f32[B, 4]",
            "%10 = sub %8, %0 : f32[B, 4]",
            "return same = %0, bcast = %4, part = %5, rr = %6, pp = %7, pp_id = %2, mul = %9, sub = %10",
        ]
    );
    // Idempotent.
    assert!(!Canonicalize.run(&mut m.functions[0].graph));
}

fn lit(dtype: DType, shape: &[u64], data: LiteralData) -> Literal {
    Literal {
        dtype,
        shape: shape.to_vec(),
        data,
    }
}

#[test]
fn const_fold_uses_the_ir_arithmetic() {
    use DType::*;
    use LiteralData::{Bool as Bs, Float as Fs, Int as Is};
    let mut g = Graph::new();
    let x = v(g.add_input("x", ty(F32, &["2"])));
    let fold = |g: &mut Graph, name: &str, op: Op, lits: Vec<Literal>| {
        let ops: Vec<Value> = lits.into_iter().map(|l| v(konst(g, l))).collect();
        let n = add(g, op, &ops);
        out(g, name, n);
    };
    let bin = Op::Binary;
    // f32 arithmetic happens in f32: 2^24 + 1 rounds back to 2^24.
    fold(
        &mut g,
        "f32_add",
        bin(BinaryOp::Add),
        vec![Literal::float(F32, 16777216.0), Literal::float(F32, 1.0)],
    );
    fold(&mut g, "tanh", Op::Unary(UnaryOp::Tanh), vec![Literal::float(F32, 0.5)]);
    fold(
        &mut g,
        "round",
        Op::Unary(UnaryOp::Round),
        vec![f32s(&[3], &[0.5, 1.5, -2.5])],
    );
    fold(
        &mut g,
        "rem_f",
        bin(BinaryOp::Rem),
        vec![f32s(&[2], &[-7.0, 7.0]), f32s(&[2], &[2.0, -2.0])],
    );
    fold(
        &mut g,
        "lt_nan",
        bin(BinaryOp::Lt),
        vec![f32s(&[2], &[1.0, f32::NAN]), Literal::float(F32, 2.0)],
    );
    // i32 wraps; div floors; rem takes the divisor's sign.
    fold(
        &mut g,
        "wrap",
        bin(BinaryOp::Add),
        vec![i32s(&[], &[2147483647]), i32s(&[], &[1])],
    );
    fold(
        &mut g,
        "neg_min",
        Op::Unary(UnaryOp::Neg),
        vec![i32s(&[], &[-2147483648])],
    );
    let a = lit(I64, &[4], Is(vec![-7, 7, -7, 7]));
    let b = lit(I64, &[4], Is(vec![2, -2, -2, 2]));
    fold(&mut g, "div", bin(BinaryOp::Div), vec![a.clone(), b.clone()]);
    fold(&mut g, "rem", bin(BinaryOp::Rem), vec![a, b]);
    fold(
        &mut g,
        "pow",
        bin(BinaryOp::Pow),
        vec![i32s(&[], &[3]), i32s(&[], &[4])],
    );
    // Broadcasting [2, 1] with [3].
    fold(
        &mut g,
        "bcast",
        bin(BinaryOp::Mul),
        vec![f32s(&[2, 1], &[1.0, 2.0]), f32s(&[3], &[1.0, 10.0, 100.0])],
    );
    let bools = |v: &[bool]| lit(Bool, &[v.len() as u64], Bs(v.to_vec()));
    fold(
        &mut g,
        "xor",
        bin(BinaryOp::Xor),
        vec![bools(&[true, true]), bools(&[true, false])],
    );
    fold(&mut g, "not", Op::Unary(UnaryOp::Not), vec![bools(&[true, false])]);
    fold(
        &mut g,
        "select",
        Op::Select,
        vec![bools(&[true, false]), f32s(&[2], &[1.0, 2.0]), Literal::float(F32, 9.0)],
    );
    fold(&mut g, "cast", Op::Cast(I32), vec![f32s(&[2], &[2.7, -2.7])]);
    fold(&mut g, "to_f32", Op::Cast(F32), vec![lit(I64, &[], Is(vec![16777217]))]);
    // Not folded: division by zero, NaN to int, erf, f16, big literals, non-constant operands.
    fold(
        &mut g,
        "div0",
        bin(BinaryOp::Div),
        vec![i32s(&[], &[1]), i32s(&[], &[0])],
    );
    fold(&mut g, "nan_int", Op::Cast(I32), vec![Literal::float(F32, f64::NAN)]);
    fold(&mut g, "erf", Op::Unary(UnaryOp::Erf), vec![Literal::float(F32, 0.5)]);
    fold(&mut g, "f16", Op::Unary(UnaryOp::Neg), vec![Literal::float(F16, 0.5)]);
    fold(
        &mut g,
        "big",
        Op::Unary(UnaryOp::Neg),
        vec![lit(F32, &[5000], Fs(vec![1.0; 5000]))],
    );
    let one = v(konst(&mut g, Literal::float(F32, 1.0)));
    let n = add(&mut g, bin(BinaryOp::Add), &[x, one]);
    out(&mut g, "live", n);
    // A chain folds in one run: exp(0) * 3.
    let z = v(konst(&mut g, Literal::float(F32, 0.0)));
    let e = v(add(&mut g, Op::Unary(UnaryOp::Exp), &[z]));
    let three = v(konst(&mut g, Literal::float(F32, 3.0)));
    let n = add(&mut g, bin(BinaryOp::Mul), &[e, three]);
    out(&mut g, "chain", n);

    let mut m = one_fn(g);
    let text = apply(&ConstFold, &mut m);
    let consts: Vec<String> = text
        .lines()
        .filter(|l| l.contains("= const"))
        .map(|l| l.trim().to_string())
        .collect();
    let expect = [
        "const f32 16777216.0 : f32[]",
        &format!("const f32 {:?} : f32[]", 0.5f32.tanh()),
        "const f32[3] [0.0, 2.0, -2.0] : f32[3]",
        "const f32[2] [1.0, -1.0] : f32[2]",
        "const bool[2] [true, false] : bool[2]",
        "const i32 -2147483648 : i32[]",
        "const i32 -2147483648 : i32[]",
        "const i64[4] [-4, -4, 3, 3] : i64[4]",
        "const i64[4] [1, -1, -1, 1] : i64[4]",
        "const i32 81 : i32[]",
        "const f32[2, 3] [1.0, 10.0, 100.0, 2.0, 20.0, 200.0] : f32[2, 3]",
        "const bool[2] [false, true] : bool[2]",
        "const bool[2] [false, true] : bool[2]",
        "const f32[2] [1.0, 9.0] : f32[2]",
        "const i32[2] [2, -2] : i32[2]",
        "const f32 16777216.0 : f32[]",
    ];
    for (i, e) in expect.iter().enumerate() {
        assert!(consts[i].ends_with(e), "{i}: `{}` vs `{e}`\n{text}", consts[i]);
    }
    for name in ["div0", "nan_int", "erf", "f16", "big", "live"] {
        let line = text.lines().find(|l| l.contains("return")).unwrap();
        let at = line
            .find(&format!(" {name} = %"))
            .unwrap_or_else(|| panic!("{name}: {text}"))
            + 1;
        let value: String = line[at + name.len() + 4..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let def = text
            .lines()
            .find(|l| l.trim().starts_with(&format!("%{value} = ")))
            .unwrap();
        assert!(!def.contains("= const"), "{name} was folded: {def}");
    }
    assert!(text.contains("const f32 3.0 : f32[]") && text.contains("chain = %"));
    let chain_def = text.lines().filter(|l| l.contains("= const f32 3.0")).count();
    assert_eq!(chain_def, 1, "{text}");
    // The operands of folded nodes are gone: 16 folds, the chain, 6 operands of unfolded nodes, `one`.
    let n_consts = text.lines().filter(|l| l.contains("= const")).count();
    assert_eq!(n_consts, 16 + 1 + 6 + 1, "{text}");
}

#[test]
fn matvec_turns_a_single_column_product_into_a_row_sum() {
    use DType::F32;
    let mut g = Graph::new();
    let a = v(g.add_input("a", ty(F32, &["B", "N", "8"])));
    let col = v(g.add_input("col", ty(F32, &["8", "1"])));
    let two = v(g.add_input("two", ty(F32, &["8", "2"])));
    let t = add(&mut g, Op::Unary(UnaryOp::Tanh), &[a]);
    let mv = add(&mut g, Op::MatMul, &[v(t), col]);
    // Two columns: a real GEMM, left alone.
    let mm = add(&mut g, Op::MatMul, &[v(t), two]);
    out(&mut g, "mv", mv);
    out(&mut g, "mm", mm);
    let mut m = one_fn(g);
    let before = print_module(&m);
    let text = apply(&MatVec, &mut m);
    let lines = body(&text);
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("reshape([8]) %1 : f32[8]"), "{text}");
    assert!(has("mul %3, %") && has(": f32[B, N, 8]"), "{text}");
    assert!(
        has("reduce_sum(axes=[2], keepdim=true)") && has(": f32[B, N, 1]"),
        "{text}"
    );
    assert_eq!(lines.iter().filter(|l| l.contains("matmul")).count(), 1, "{text}");
    assert!(has("matmul %3, %2 : f32[B, N, 2]"), "{text}");
    // The outputs keep their types (the verifier checked the rest).
    let f = &m.functions[0].graph;
    assert_eq!(f.output_types()[0], ty(F32, &["B", "N", "1"]));
    // Nothing more to rewrite the second time.
    assert!(!run_on_module(&MatVec, &mut m));
    assert_ne!(before, text);
}

#[test]
fn cse_merges_pure_duplicates_within_one_scope() {
    use DType::*;
    let mut g = Graph::new();
    let x = v(g.add_input("x", ty(F32, &["B", "8"])));
    let x2 = v(g.add_input("x", ty(F32, &["B", "8"])));
    let seed = v(g.add_input("seed", ty(I64, &[])));
    let e1 = add(&mut g, Op::Unary(UnaryOp::Exp), &[x]);
    let e2 = add(&mut g, Op::Unary(UnaryOp::Exp), &[x]);
    let e3 = add(&mut g, Op::Unary(UnaryOp::Exp), &[x2]);
    // Users of the duplicates merge in turn.
    let s1 = add(&mut g, Op::Binary(BinaryOp::Add), &[v(e1), v(e3)]);
    let s2 = add(&mut g, Op::Binary(BinaryOp::Add), &[v(e2), v(e3)]);
    let rng = |g: &mut Graph| add(g, Op::RngUniform { shape: vec![d("4")] }, &[seed, seed]);
    let (r1, r2) = (rng(&mut g), rng(&mut g));
    let z = konst(&mut g, Literal::float(F32, 0.0));
    let nz = konst(&mut g, Literal::float(F32, -0.0));
    let z2 = konst(&mut g, Literal::float(F32, 0.0));
    let k1 = add(
        &mut g,
        Op::TopK {
            k: d("2"),
            axis: 1,
            largest: true,
        },
        &[x],
    );
    let k2 = add(
        &mut g,
        Op::TopK {
            k: d("2"),
            axis: 1,
            largest: true,
        },
        &[x],
    );
    for (i, n) in [s1, s2, r1, r2, z, nz, z2].into_iter().enumerate() {
        out(&mut g, &format!("o{i}"), n);
    }
    g.outputs.push(("k1".into(), Value { node: k1, index: 1 }));
    g.outputs.push(("k2".into(), Value { node: k2, index: 1 }));
    let mut m = one_fn(g);
    let text = apply(&Cse, &mut m);
    assert_eq!(
        body(&text),
        [
            "%0 = input \"x\" : f32[B, 8]",
            "%1 = input \"x\" : f32[B, 8]",
            "%2 = input \"seed\" : i64[]",
            "%3 = exp %0 : f32[B, 8]",
            "%4 = exp %1 : f32[B, 8]",
            "%5 = add %3, %4 : f32[B, 8]",
            "%6 = rng_uniform(shape=[4]) %2, %2 : f32[4]",
            "%7 = const f32 0.0 : f32[]",
            "%8 = const f32 -0.0 : f32[]",
            "%9:2 = topk(k=2, axis=1, largest=true) %0 : f32[B, 2], i64[B, 2]",
            "return o0 = %5, o1 = %5, o2 = %6, o3 = %6, o4 = %7, o5 = %8, o6 = %7, k1 = %9#1, k2 = %9#1",
        ]
    );
}

#[test]
fn cse_does_not_merge_across_loop_bodies_but_does_inside() {
    let mut m = decoder();
    let g = &mut m.functions[0].graph;
    let outer = konst(g, Literal::float(DType::F32, 0.5));
    out(g, "half", outer);
    let l = g
        .dag
        .node_indices()
        .find(|n| matches!(g.dag[*n].op, Op::Loop(_)))
        .unwrap();
    let Op::Loop(lp) = &mut g.dag[l].op else { panic!() };
    let b = &mut lp.body;
    let h = b.inputs[1];
    let t1 = add(b, Op::Unary(UnaryOp::Tanh), &[v(h)]);
    let t2 = add(b, Op::Unary(UnaryOp::Tanh), &[v(h)]);
    let s = add(b, Op::Binary(BinaryOp::Sub), &[v(t1), v(t2)]);
    b.outputs[0].1 = v(s);
    let text = apply(&Cse, &mut m);
    assert_eq!(text.matches("= const f32 0.5").count(), 2, "{text}");
    assert_eq!(text.matches("= tanh %1 ").count(), 1, "{text}");
    assert!(text.contains("    %10 = sub %9, %9 : f32[B, 8]"), "{text}");
}

/// Two loops with the same operands and result types merge only if their bodies are the same.
#[test]
fn cse_compares_loop_bodies() {
    let mut m = decoder();
    let g = &mut m.functions[0].graph;
    let l = g
        .dag
        .node_indices()
        .find(|n| matches!(g.dag[*n].op, Op::Loop(_)))
        .unwrap();
    let ops = g.operands(l);
    let same = g.dag[l].op.clone();
    let mut other = g.dag[l].op.clone();
    let Op::Loop(lp) = &mut other else { panic!() };
    let tanh = lp.body.outputs[0].1;
    lp.body.outputs[0].1 = v(add(&mut lp.body, Op::Unary(UnaryOp::Neg), &[tanh]));
    for (name, op) in [("same", same), ("other", other)] {
        let n = g.add(op, &ops, Origin::default()).unwrap();
        g.outputs.push((name.into(), Value { node: n, index: 0 }));
    }
    let text = apply(&Cse, &mut m);
    assert_eq!(text.matches(" = loop").count(), 2, "{text}");
    assert_eq!(text.matches(" = neg ").count(), 1, "{text}");
}

#[test]
fn dce_removes_dead_nodes_and_keeps_interfaces() {
    let mut m = decoder();
    let g = &mut m.functions[0].graph;
    let x = g.inputs[0];
    let dead = add(g, Op::Unary(UnaryOp::Exp), &[v(x)]);
    add(g, Op::Unary(UnaryOp::Neg), &[v(dead)]);
    let l = g
        .dag
        .node_indices()
        .find(|n| matches!(g.dag[*n].op, Op::Loop(_)))
        .unwrap();
    let Op::Loop(lp) = &mut g.dag[l].op else { panic!() };
    // The index input is unused but stays; a dead node in the body goes.
    let i = lp.body.inputs[0];
    add(&mut lp.body, Op::Unary(UnaryOp::Neg), &[v(i)]);
    // A loop whose results are unused goes entirely.
    let lp2 = g.dag[l].op.clone();
    let ops = g.operands(l);
    g.add(lp2, &ops, Origin::default()).unwrap();
    let before = print_module(&m);
    let text = apply(&Dce, &mut m);
    assert_eq!(text, print_module(&decoder()), "before:\n{before}");
    assert!(!Dce.run(&mut m.functions[0].graph));
}

#[test]
fn the_pipeline_runs_in_order_keeps_verifying_and_stops_on_request() {
    assert_eq!(PASS_NAMES, ["matvec", "canonicalize", "const-fold", "cse", "dce"]);
    let names: Vec<&str> = standard_pipeline().iter().map(|p| p.name()).collect();
    assert_eq!(names, PASS_NAMES);
    for m in [mlp(), decoder(), kitchen_sink()] {
        let mut m = m;
        let mut seen = vec![];
        run_pipeline(&mut m, None, |name, m| {
            verify_module(m).unwrap_or_else(|e| panic!("after {name}: {e:?}"));
            let text = print_module(m);
            assert_eq!(print_module(&parse_module(&text).unwrap()), text);
            seen.push(name.to_string());
        })
        .unwrap();
        assert_eq!(seen, PASS_NAMES);
    }
    let mut m = kitchen_sink();
    let mut seen = vec![];
    run_pipeline(&mut m, Some("cse"), |name, _| seen.push(name.to_string())).unwrap();
    assert_eq!(seen, ["matvec", "canonicalize", "const-fold", "cse"]);
    let err = run_pipeline(&mut m, Some("fuse"), |_, _| panic!("ran a pass")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown pass `fuse` (the passes are matvec, canonicalize, const-fold, cse, dce)"
    );
}

#[test]
fn the_pipeline_simplifies_the_kitchen_sink() {
    let mut m = kitchen_sink();
    run_pipeline(&mut m, None, |_, _| {}).unwrap();
    let text = print_module(&m);
    // The identity reshape before the loop is gone; the loop's argument is the concat.
    assert!(
        text.contains("= loop(trips=N, max=64, carried=1, stop=true, emit=1) %"),
        "{text}"
    );
    assert!(!text.contains("reshape([B, 8])"), "{text}");
    // Duplicate `exp %0` nodes (three of them) are one now.
    assert_eq!(text.matches("= exp %0 ").count(), 1, "{text}");
}
