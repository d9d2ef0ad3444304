//! The text form: round trips, exact attributes, errors, and no panics on any input.

mod common;
use common::*;
use mlc_ir::*;

fn round_trip(m: &Module) -> String {
    let text = print_module(m);
    let parsed = parse_module(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        print_module(&parsed),
        text,
        "print -> parse -> print is not the identity"
    );
    text
}

#[test]
fn modules_round_trip_exactly() {
    for m in [mlp(), decoder(), kitchen_sink()] {
        verify_module(&m).unwrap();
        round_trip(&m);
        let parsed = parse_module(&print_module(&m)).unwrap();
        assert_eq!(parsed, m);
        verify_module(&parsed).unwrap();
        // Origins are not part of `Graph`'s equality; check them through the text.
        for (a, b) in parsed.functions.iter().zip(&m.functions) {
            let mut oa: Vec<Origin> = a.graph.dag.node_weights().map(|n| n.origin.clone()).collect();
            let mut ob: Vec<Origin> = b.graph.dag.node_weights().map(|n| n.origin.clone()).collect();
            oa.sort_by(|x, y| (&x.name, &x.loc).cmp(&(&y.name, &y.loc)));
            ob.sort_by(|x, y| (&x.name, &x.loc).cmp(&(&y.name, &y.loc)));
            assert_eq!(oa, ob);
        }
    }
}

#[test]
fn mlp_prints_as_documented() {
    let expected = "\
module Mlp

param l1.b: f32[8] init zeros
param l1.w: f32[4, 8] init normal(0.08)
param l2.b: f32[2] init ones
param l2.w: f32[8, 2] init uniform(0.1)

func forward(x: f32[B, 4]) -> (y: f32[B, 2]) {
  %0 = input \"x\" : f32[B, 4]
  %1 = param \"l1.w\" : f32[4, 8]                         # l1.w
  %2 = param \"l1.b\" : f32[8]                            # l1.b
  %3 = matmul %0, %1 : f32[B, 8]                        # h @ mlp.dsl:7:5
  %4 = add %3, %2 : f32[B, 8]                           # h @ mlp.dsl:7:5
  %5 = tanh %4 : f32[B, 8]                              # h @ mlp.dsl:8:5
  %6 = param \"l2.w\" : f32[8, 2]                         # l2.w
  %7 = param \"l2.b\" : f32[2]                            # l2.b
  %8 = matmul %5, %6 : f32[B, 2]
  %9 = add %8, %7 : f32[B, 2]
  return y = %9
}
";
    assert_eq!(print_module(&mlp()), expected);
    let body = print_graph(&mlp().functions[0].graph);
    assert!(body.starts_with("%0 = input \"x\" : f32[B, 4]\n"));
    assert!(body.ends_with("return y = %9\n"));
}

#[test]
fn loops_and_multi_results_print_readably() {
    let text = print_module(&decoder());
    for line in [
        "func greedy(h0: f32[B, 8]) -> (picks: i64[N, B], h: f32[B, 8], top: i64[B, 3]) {",
        "  %2:2 = loop(trips=N, max=64, carried=1, stop=true, emit=1) %0, %1 {",
        "    ^(i: i64[], h: f32[B, 8], w: f32[8, 8])",
        "    yield h = %4, stop = %7, pick = %8",
        "  } : f32[B, 8], i64[N, B]                              # decode @ dec.dsl:3:5",
        "  %3:2 = topk(k=3, axis=1, largest=true) %2 : f32[B, 3], i64[B, 3]",
        "  return picks = %2#1, h = %2, top = %3#1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
}

#[test]
fn every_op_and_attribute_survives() {
    let text = round_trip(&kitchen_sink());
    for u in Op::UNARY {
        assert!(text.contains(&format!(" = {} %", Op::Unary(u).mnemonic())), "{u:?}");
    }
    for b in Op::BINARY {
        assert!(text.contains(&format!(" = {} %", Op::Binary(b).mnemonic())), "{b:?}");
    }
    for s in [
        "const f32[6] [0.1, inf, -inf, -0.0, 1e-7, 3e38]",
        "const i64 -9223372036854775808",
        "const f32[0, 3] []",
        "pad(axis=1, before=1, after=2, value=-inf)",
        "dim(2*B*T + 1)",
        "rng_uniform(shape=[B, N - 1])",
        "param \"odd-name w\": f32[4] init fill(-0.0)",
        "# \"a@b \\\"q\\\"\" @ \" spaced loc \"",
        "# @ k.dsl:1:1",
        "%79 = input \"plain\" : f32[B, 4]                       # \"\"",
        "\"odd name\" = %0",
    ] {
        assert!(text.contains(s), "missing `{s}`");
    }
}

fn const_module(lit: Literal) -> Module {
    let mut g = Graph::new();
    let c = konst(&mut g, lit);
    g.outputs.push(("c".into(), v(c)));
    module("C", vec![], vec![("f", g)])
}

#[test]
fn floats_round_trip_bit_for_bit() {
    let values = [
        0.1f32,
        -0.0,
        f32::MIN_POSITIVE,
        1e-45,
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        16777217.0,
    ];
    let m = const_module(f32s(&[values.len() as u64], &values));
    let parsed = parse_module(&round_trip(&m)).unwrap();
    let Op::Const(lit) = &parsed.functions[0].graph.dag.node_weights().next().unwrap().op else {
        panic!()
    };
    let LiteralData::Float(got) = &lit.data else { panic!() };
    for (a, b) in got.iter().zip(values) {
        assert_eq!(a.to_bits(), (b as f64).to_bits());
    }
    // NaN prints as NaN and reads back as NaN (NaN != NaN, so compare the text only).
    let nan = const_module(f32s(&[2], &[f32::NAN, 1.0]));
    assert!(round_trip(&nan).contains("[NaN, 1.0]"));
    // A value that is not exactly an f32 keeps its f64 value (and the verifier rejects it).
    let inexact = const_module(Literal {
        dtype: DType::F32,
        shape: vec![],
        data: LiteralData::Float(vec![0.1]),
    });
    let text = round_trip(&inexact);
    assert!(text.contains("const f32 0.1f64"), "{text}");
    assert_eq!(parse_module(&text).unwrap(), inexact);
    let errs = verify_module(&inexact).unwrap_err();
    assert!(
        errs[0].to_string().contains("not exactly representable in f32"),
        "{}",
        errs[0]
    );
    // f64 attributes keep full precision.
    let mut g = Graph::new();
    let x = g.add_input("x", ty(DType::F32, &["3"]));
    let pad = Op::Pad {
        axis: 0,
        before: 1,
        after: 0,
        value: 0.1 + 0.2,
    };
    let p = add(&mut g, pad, &[v(x)]);
    g.outputs.push(("p".into(), v(p)));
    let m = module(
        "P",
        vec![decl("w", DType::F32, &[], Init::Normal(1e-300))],
        vec![("f", g)],
    );
    let text = round_trip(&m);
    assert!(text.contains("value=0.30000000000000004") && text.contains("normal(1e-300)"));
    assert_eq!(parse_module(&text).unwrap(), m);
}

#[test]
fn hand_written_text_parses_with_comments_and_loose_spacing() {
    let src = "// a comment\nmodule M\n# another\nfunc f(x: f32[B]) -> (y: f32[B]) {\n  %10 = input \"x\" : f32[B]\n\n  %3=exp %10 : f32[B]   # e\n  return y = %3#0\n}\n";
    let m = parse_module(src).unwrap();
    verify_module(&m).unwrap();
    assert_eq!(
        print_module(&m),
        "module M\n\nfunc f(x: f32[B]) -> (y: f32[B]) {\n  %0 = input \"x\" : f32[B]\n  %1 = exp %0 : f32[B]                                  # e\n  return y = %1\n}\n"
    );
}

fn error(src: &str) -> ParseError {
    match parse_module(src) {
        Ok(_) => panic!("parsed: {src}"),
        Err(e) => e,
    }
}

#[test]
fn errors_point_at_the_problem() {
    let head = "module M\nfunc f(x: f32[B]) -> (y: f32[B]) {\n  %0 = input \"x\" : f32[B]\n";
    let cases = [
        ("  %1 = exp %7 : f32[B]\n", 3, 12, "`%7` is not defined"),
        ("  %1 = frob %0 : f32[B]\n", 3, 8, "unknown op `frob`"),
        (
            "  %1 = reduce_sum(axes=[0]) %0 : f32[]\n",
            3,
            8,
            "missing attribute `keepdim`",
        ),
        ("  %1 = exp(x=1) %0 : f32[B]\n", 3, 8, "takes no attributes"),
        ("  %1 = exp %0 : f33[B]\n", 3, 17, "unknown dtype `f33`"),
        ("  %0 = exp %0 : f32[B]\n", 3, 3, "defined twice"),
        ("  %1:2 = exp %0 : f32[B]\n", 3, 3, "declares 2 result(s)"),
        ("  %1 = exp %0#1 : f32[B]\n", 3, 12, "has 1 result(s)"),
        (
            "  %1 = slice(axis=0, start=0, end=B +, step=1) %0 : f32[B]\n",
            3,
            31,
            "bad dimension",
        ),
        ("  return z = %0\n}\n", 1, 0, "does not match the returned"),
    ];
    for (tail, line, col, msg) in cases {
        let e = error(&format!("{head}{tail}"));
        assert!(e.message.contains(msg), "{tail}: {e}");
        assert_eq!(e.line, line + 1, "{tail}: {e}");
        if col > 0 {
            assert_eq!(e.col, col, "{tail}: {e}");
        }
    }
    let e = error("module M\nparam w: f32[N] init zeros\n");
    assert_eq!((e.line, e.col), (2, 14));
    assert!(error("modul M").message.contains("expected `module`"));
    assert!(
        error("module M\nfunc f(q: f32[]) -> () {\n  return\n}\n")
            .message
            .contains("no `input \"q\"`")
    );
}

/// A tiny deterministic generator for garbage.
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *seed >> 33
}

#[test]
fn no_panics_on_prefixes_edits_or_garbage() {
    let text = print_module(&kitchen_sink());
    for (i, _) in text.char_indices() {
        let _ = parse_module(&text[..i]);
    }
    let bytes: Vec<char> = text.chars().collect();
    let mut seed = 7;
    let alphabet: Vec<char> = "%#:=,()[]{}^\"\\@-+*/ \n0123456789abcfinNTB.ü".chars().collect();
    for _ in 0..3000 {
        let mut s = bytes.clone();
        for _ in 0..(1 + lcg(&mut seed) % 4) {
            let at = (lcg(&mut seed) as usize) % s.len();
            match lcg(&mut seed) % 3 {
                0 => {
                    s.remove(at);
                }
                1 => s.insert(at, alphabet[(lcg(&mut seed) as usize) % alphabet.len()]),
                _ => s[at] = alphabet[(lcg(&mut seed) as usize) % alphabet.len()],
            }
        }
        let s: String = s.into_iter().collect();
        if let Ok(m) = parse_module(&s) {
            // Whatever parses prints and verifies without panicking.
            let _ = verify_module(&m);
            let again = print_module(&m);
            assert_eq!(print_module(&parse_module(&again).unwrap()), again);
        }
    }
    for _ in 0..2000 {
        let len = (lcg(&mut seed) % 80) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(lcg(&mut seed) as usize) % alphabet.len()])
            .collect();
        let _ = parse_module(&format!("module M\nfunc f() -> () {{\n{s}"));
        let _ = parse_module(&s);
    }
    let deep = format!(
        "module M\nfunc f() -> () {{\n{}",
        "%0 = loop(trips=1, max=1, carried=0, stop=false, emit=0) {\n^()\n".repeat(200)
    );
    assert!(error(&deep).message.contains("nested more than"));
}
