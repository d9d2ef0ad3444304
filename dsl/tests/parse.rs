//! The parser on valid input: the AST shapes of every construct, precedence and spans.

mod common;

use common::{expr, parse_ok, sexpr};
use mlc_dsl::ast::*;

const CONSTRUCTS: &str = include_str!("data/constructs.dsl");

fn s(e: &str) -> String {
    sexpr(&expr(e))
}

#[test]
fn precedence() {
    assert_eq!(s("a + b * c"), "(+ a (* b c))");
    assert_eq!(s("a * b + c"), "(+ (* a b) c)");
    assert_eq!(s("a - b - c"), "(- (- a b) c)");
    assert_eq!(s("a / b % c @ d"), "(@ (% (/ a b) c) d)");
    assert_eq!(s("-x ** 2"), "(neg (** x 2))");
    assert_eq!(s("x ** -2"), "(** x (neg 2))");
    assert_eq!(s("a ** b ** c"), "(** a (** b c))");
    assert_eq!(s("--x"), "(neg (neg x))");
    assert_eq!(s("!a & b"), "(& (not a) b)");
    assert_eq!(s("x @ w + b"), "(+ (@ x w) b)");
    assert_eq!(s("a + b < c * d"), "(< (+ a b) (* c d))");
    assert_eq!(s("a == b | c != d & e >= f"), "(| (== a b) (& (!= c d) (>= e f)))");
    assert_eq!(s("a <= b"), "(<= a b)");
    assert_eq!(s("(a < b) < c"), "(< (< a b) c)");
    assert_eq!(s("a | b | c"), "(| (| a b) c)");
    assert_eq!(s("(a + b) * c"), "(* (+ a b) c)");
    assert_eq!(s("if a < b { a } else { b + 1 }"), "(if (< a b) a (+ b 1))");
    assert_eq!(s("if a { 1 } else if b { 2 } else { 3 }"), "(if a 1 (if b 2 3))");
    assert_eq!(s("-f(x).y[0]"), "(neg (index (. (call f x) y) 0))");
    assert_eq!(s("x.y.z(1)(2)"), "(call (call (. (. x y) z) 1) 2)");
}

#[test]
fn literals_and_collections() {
    assert_eq!(s("12"), "12");
    assert_eq!(s("1.0"), "1.0");
    assert_eq!(s("1e-5"), "1e-5");
    assert_eq!(s("2.5e3"), "2500.0");
    assert_eq!(s("true & !false"), "(& true (not false))");
    assert_eq!(s("None"), "None");
    assert_eq!(s("(a)"), "a");
    assert_eq!(s("(a,)"), "(tuple a)");
    assert_eq!(s("(a, b + 1)"), "(tuple a (+ b 1))");
    assert_eq!(s("[a, b,]"), "[a b]");
    assert_eq!(s("[]"), "[]");
    assert_eq!(s("f()"), "(call f)");
    assert_eq!(s("f(x, axis = -1, keep=true,)"), "(call f x axis=(neg 1) keep=true)");
    assert_eq!(s("f(a == b)"), "(call f (== a b))");
    assert_eq!(s("max(x, axis=0)"), "(call max x axis=0)");
    assert_eq!(
        s("carry + until + shares + std + int + f32x"),
        "(+ (+ (+ (+ (+ carry until) shares) std) int) f32x)"
    );
}

#[test]
fn index_items() {
    assert_eq!(s("x[i]"), "(index x i)");
    assert_eq!(
        s("x[:, None, 1:, :2, ::2, a:b:c, ...]"),
        "(index x : new 1: :2 ::2 a:b:c ...)"
    );
    assert_eq!(s("x[..., -1]"), "(index x ... (neg 1))");
    assert_eq!(s("x[i + 1 : n]"), "(index x (+ i 1):n)");
    assert_eq!(s("x[a:]"), "(index x a:)");
}

#[test]
fn spans_cover_the_source() {
    let text = "fn t() = a   +  b * c   ";
    let file = parse_ok(text);
    let Item::Fn(f) = &file.items[0] else { panic!() };
    let Stmt::Return { values, .. } = &f.body.stmts[0] else {
        panic!()
    };
    let e = &values[0].1;
    let snip = |sp: mlc_dsl::Span| &text[sp.start as usize..sp.end as usize];
    assert_eq!(snip(e.span), "a   +  b * c");
    let ExprKind::Binary(_, a, bc) = &e.kind else { panic!() };
    assert_eq!(snip(a.span), "a");
    assert_eq!(snip(bc.span), "b * c");
    assert_eq!(snip(f.span), "fn t() = a   +  b * c");
    assert_eq!(snip(f.name.span), "t");
    // Parenthesised expressions keep their parentheses in the span; postfix covers the chain.
    let e = expr("(a + b) * f(x)[0]");
    let ExprKind::Binary(_, lhs, rhs) = &e.kind else {
        panic!()
    };
    assert_eq!((lhs.span.start, lhs.span.end), (9, 16));
    assert_eq!((rhs.span.start, rhs.span.end), (19, 26));
    assert_eq!((e.span.start, e.span.end), (9, 26));
}

#[test]
fn range_lexes_in_headers() {
    let file = parse_ok("fn t() { for i in 0..N { let x = i } loop j in 1..n-1 { next x = 0.5 } return 1 }");
    let Item::Fn(f) = &file.items[0] else { panic!() };
    let Stmt::For { start, end, .. } = &f.body.stmts[0] else {
        panic!()
    };
    assert_eq!((sexpr(start), sexpr(end)), ("0".to_string(), "N".to_string()));
    let Stmt::Loop(l) = &f.body.stmts[1] else { panic!() };
    let (a, b) = l.range.as_ref().unwrap();
    assert_eq!((sexpr(a), sexpr(b)), ("1".to_string(), "(- n 1)".to_string()));
}

fn constructs() -> File {
    parse_ok(CONSTRUCTS)
}

#[test]
fn imports() {
    let file = constructs();
    let imports: Vec<&Import> = file
        .items
        .iter()
        .filter_map(|i| if let Item::Import(i) = i { Some(i) } else { None })
        .collect();
    assert_eq!(imports.len(), 4);
    let names = |i: &Import| {
        i.names
            .as_ref()
            .map(|n| n.iter().map(|n| n.name.clone()).collect::<Vec<_>>())
    };
    match &imports[0].target {
        ImportTarget::Std(p) => assert_eq!(p.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["nn"]),
        t => panic!("{t:?}"),
    }
    assert_eq!(names(imports[0]), None);
    assert_eq!(
        names(imports[1]),
        Some(vec!["Linear".to_string(), "LSTMCell".to_string()])
    );
    assert_eq!(imports[2].target, ImportTarget::File("layers.dsl".into()));
    assert_eq!(names(imports[3]), Some(vec!["Block".to_string()]));
    assert_eq!(
        &CONSTRUCTS[imports[3].span.start as usize..imports[3].span.end as usize],
        "import \"layers.dsl\".{Block}"
    );
}

#[test]
fn functions_and_types() {
    let file = constructs();
    let Item::Fn(gelu) = &file.items[4] else { panic!() };
    assert_eq!(gelu.name.name, "gelu");
    assert!(matches!(
        gelu.ret.as_deref(),
        Some([TypeExpr::Tensor { dims: None, .. }])
    ));
    assert!(
        matches!(&gelu.body.stmts[..], [Stmt::Return { values, .. }] if values.len() == 1 && values[0].0.is_none())
    );

    let Item::Fn(split) = &file.items[5] else { panic!() };
    let p = &split.params;
    assert_eq!(p.len(), 3);
    let Some(TypeExpr::Tensor {
        dtype,
        dims: Some(dims),
        ..
    }) = &p[0].ty
    else {
        panic!()
    };
    assert_eq!(dtype.name, "f32");
    assert_eq!(dims.iter().map(sexpr).collect::<Vec<_>>(), ["B", "T", "(* d 4)"]);
    assert!(matches!(p[1].ty, Some(TypeExpr::Int(_))) && p[1].default.is_some());
    assert!(p[2].ty.is_none() && matches!(p[2].default.as_ref().map(|e| &e.kind), Some(ExprKind::Float(_))));
    let ret = split.ret.as_ref().unwrap();
    assert!(matches!(
        &ret[..],
        [
            TypeExpr::Tensor { dims: Some(_), .. },
            TypeExpr::Tensor { dims: None, .. },
            TypeExpr::Bool(_)
        ]
    ));

    let Stmt::Let { pat, value, .. } = &split.body.stmts[0] else {
        panic!()
    };
    let Pattern::Tuple(parts, _) = pat else { panic!() };
    assert!(
        matches!(&parts[..], [Pattern::Name(a), Pattern::Tuple(inner, _)] if a.name == "a" && matches!(inner[..], [Pattern::Name(_), Pattern::Wild(_)]))
    );
    assert_eq!(sexpr(value), "(tuple (index x : : :d) (tuple (index x ... d:) None))");

    let Stmt::Return { values, .. } = &split.body.stmts[2] else {
        panic!()
    };
    let named: Vec<Option<&str>> = values.iter().map(|v| v.0.as_ref().map(|n| n.name.as_str())).collect();
    assert_eq!(named, [None, Some("rest"), Some("flag")]);
    assert_eq!(sexpr(&values[2].1), "(| (& (not (>= n 2)) true) false)");
}

#[test]
fn blocks_and_members() {
    let file = constructs();
    let Item::Block(mlp) = &file.items[6] else { panic!() };
    assert!(!mlp.is_model);
    assert_eq!(
        mlp.hparams.iter().map(|h| h.name.name.as_str()).collect::<Vec<_>>(),
        ["d", "hidden", "bias"]
    );
    assert!(matches!(mlp.hparams[2].ty, Some(TypeExpr::Bool(_))));
    let Member::Sub {
        name,
        block,
        args,
        repeat: None,
        shares: None,
        cond: None,
        ..
    } = &mlp.members[0]
    else {
        panic!()
    };
    assert_eq!(
        (name.name.as_str(), block.name.as_str(), args.len()),
        ("up", "Linear", 3)
    );
    assert_eq!(args[2].name.as_ref().unwrap().name, "bias");
    let Member::Sub { args, .. } = &mlp.members[2] else {
        panic!()
    };
    assert!(args.is_empty());
    let Member::Param {
        name,
        dtype,
        dims,
        init: Some(init),
        cond: Some(cond),
        ..
    } = &mlp.members[3]
    else {
        panic!()
    };
    assert_eq!(
        (name.name.as_str(), dtype.name.as_str(), dims.len()),
        ("scale", "f32", 1)
    );
    assert_eq!(
        (sexpr(init), sexpr(cond)),
        ("(call ones [d])".to_string(), "bias".to_string())
    );
    assert!(matches!(&mlp.members[4], Member::Param { dims, init: None, cond: None, .. } if dims.is_empty()));
    assert!(
        matches!(&mlp.members[5], Member::Let { name, value, .. } if name.name == "dh" && sexpr(value) == "(/ d 2)")
    );
    assert!(matches!(&mlp.members[6], Member::Fn(f) if f.name.name == "forward"));

    let Item::Block(ptr) = &file.items[7] else { panic!() };
    assert!(ptr.is_model);
    let Member::Sub {
        repeat: Some(n),
        block,
        shares: Some(sh),
        cond: Some(c),
        ..
    } = &ptr.members[1]
    else {
        panic!()
    };
    assert_eq!(
        (sexpr(n), block.name.as_str(), sexpr(sh), sexpr(c)),
        ("4".into(), "Mlp", "(. upper layers)".into(), "(> hidden 64)".into())
    );
    assert!(matches!(
        &ptr.members[2],
        Member::Sub {
            shares: Some(_),
            cond: None,
            ..
        }
    ));
    assert!(matches!(&ptr.members[3], Member::Entry(e) if e.name.name == "greedy"));

    let m = parse_ok("model M { }");
    assert!(matches!(&m.items[0], Item::Block(b) if b.is_model && b.hparams.is_empty()));
}

#[test]
fn loops_and_statements() {
    let file = constructs();
    let Item::Block(ptr) = &file.items[7] else { panic!() };
    let Member::Entry(greedy) = &ptr.members[3] else {
        panic!()
    };
    let stmts = &greedy.body.stmts;
    assert!(matches!(&stmts[1], Stmt::For { var, body, .. } if var.name == "i" && body.stmts.len() == 1));
    let Stmt::Loop(l) = &stmts[2] else { panic!() };
    assert_eq!(l.var.name, "step");
    let (a, b) = l.range.as_ref().unwrap();
    assert_eq!((sexpr(a), sexpr(b)), ("0".into(), "N".into()));
    assert_eq!(sexpr(l.max.as_ref().unwrap()), "64");
    assert_eq!(
        l.carry.iter().map(|c| c.0.name.as_str()).collect::<Vec<_>>(),
        ["h", "c", "seen"]
    );
    assert_eq!(sexpr(&l.carry[2].1), "(index zeros_bool B N)");
    assert_eq!(sexpr(l.until.as_ref().unwrap()), "(call all seen)");
    let body = &l.body.stmts;
    assert_eq!(
        sexpr(match &body[1] {
            Stmt::Let { value, .. } => value,
            s => panic!("{s:?}"),
        }),
        "(call where seen (neg inf) (@ (call tanh (@ e (index h : new :))) v))"
    );
    let Stmt::Next { values, .. } = &body[3] else { panic!() };
    assert_eq!(
        values.iter().map(|v| v.0.name.as_str()).collect::<Vec<_>>(),
        ["h", "c", "seen"]
    );
    assert!(matches!(&body[4], Stmt::Emit { name, value, .. } if name.name == "picks" && sexpr(value) == "j"));

    let Stmt::Loop(l2) = &stmts[3] else { panic!() };
    assert!(l2.range.is_none() && l2.max.is_some() && l2.carry.is_empty() && l2.until.is_none());

    let Stmt::Return { values, .. } = &stmts[4] else {
        panic!()
    };
    let named: Vec<&str> = values.iter().map(|v| v.0.as_ref().unwrap().name.as_str()).collect();
    assert_eq!(named, ["picks", "last"]);
    assert_eq!(sexpr(&values[1].1), "(call max picks axis=0)");
}

#[test]
fn comments_semicolons_and_contextual_keywords() {
    let file = parse_ok(
        "// c\nfn f(max, carry) { let until = max; let shares = carry /* x */ ; return until + shares; } ;\n\
         model M { x = Foo; shares = Bar(1); param w: f32[2]; }",
    );
    assert_eq!(file.items.len(), 2);
    let Item::Block(m) = &file.items[1] else { panic!() };
    assert!(matches!(&m.members[0], Member::Sub { block, shares: None, .. } if block.name == "Foo"));
    assert!(matches!(&m.members[1], Member::Sub { name, .. } if name.name == "shares"));
    assert!(parse_ok("").items.is_empty());
    assert!(parse_ok("  // only a comment").items.is_empty());
}
