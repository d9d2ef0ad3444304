//! Syntax errors: exact rendered diagnostics, and no panic on any input.

mod common;

use common::{parse, parse_err};

#[test]
fn unexpected_token_with_expected_list() {
    assert_eq!(
        parse_err("fn f(x) {\n  let y = x[1, , 2]\n}\n"),
        "t.dsl:2:16: error: unexpected `,`
  |
2 |   let y = x[1, , 2]
  |                ^
  = expected: an index, `]`
"
    );
    assert_eq!(
        parse_err("fn f(x) = g(a b)"),
        "t.dsl:1:15: error: unexpected `b`
  |
1 | fn f(x) = g(a b)
  |               ^
  = expected: `)`, `,`
"
    );
    assert_eq!(
        parse_err("fn f(x) {\n\tlet y = x +\n}"),
        "t.dsl:3:1: error: unexpected `}`
  |
3 | }
  | ^
  = expected: an expression
"
    );
}

#[test]
fn end_of_file() {
    assert_eq!(
        parse_err("model M {\n  x = Linear(2, 3)\n"),
        "t.dsl:3:1: error: unexpected end of file
  |
3 | 
  | ^
  = expected: a member (`param`, `let`, `fn`, `entry` or `name = Block(...)`), `if`, `shares`, `}`
  = the `{` opened at line 1, column 9 is not closed
"
    );
    assert_eq!(
        parse_err("fn f(x) = if x { 1 }"),
        "t.dsl:1:21: error: unexpected end of file
  |
1 | fn f(x) = if x { 1 }
  |                     ^
  = expected: `else`
"
    );
}

#[test]
fn reserved_words() {
    assert_eq!(
        parse_err("fn f(x) {\n    let loop = x\n}"),
        "t.dsl:2:9: error: `loop` is a reserved word and cannot be a name
  |
2 |     let loop = x
  |         ^^^^
  = expected: a pattern
"
    );
    assert!(parse_err("block in { }").starts_with("t.dsl:1:7: error: `in` is a reserved word and cannot be a name"));
    assert!(parse_err("fn f(x) = x + return").contains("`return` is a reserved word"));
    assert!(parse_err("fn f(_) = 1").contains("unexpected `_`"));
}

#[test]
fn other_errors() {
    assert_eq!(
        parse_err("fn f(a, b, c) = a < b < c"),
        "t.dsl:1:23: error: comparison operators cannot be chained
  |
1 | fn f(a, b, c) = a < b < c
  |                       ^
  = use parentheses, or combine two comparisons with `&`
"
    );
    assert_eq!(
        parse_err("fn f() = 1 + 9223372036854775808"),
        "t.dsl:1:14: error: integer literal `9223372036854775808` is too large
  |
1 | fn f() = 1 + 9223372036854775808
  |              ^^^^^^^^^^^^^^^^^^^
  = the largest integer is 9223372036854775807
"
    );
    assert!(parse_err("fn f() = 1e999").contains("error: float literal `1e999` is out of range"));
    assert!(parse_err("fn f() { return }").contains("error: unexpected `}`"));
    assert!(parse_err("fn f() = 1 /* open").starts_with("t.dsl:1:12: error: unterminated comment `/*`"));
    assert!(parse_err("import \"a.dsl").starts_with("t.dsl:1:8: error: unterminated string"));
    assert!(parse_err("fn f() { let x = 3. }").contains("unexpected `}`"));
    assert!(parse_err("fn f() = x.0").contains("expected: a name"));
    assert!(parse_err("fn f() { for i in 0 N { } }").contains("expected: `..`"));
    assert!(parse_err("fn f(x: foo) = x").contains("unknown type `foo`"));
    assert!(parse_err("import foo").contains("expected: a file name in quotes, `std`"));
    assert!(parse_err("  bar").contains("expected: an item (`import`, `fn`, `block` or `model`)"));
    assert!(parse_err("fn f() = 1 $").contains("unexpected `$`"));
    assert!(parse_err("fn f() { let x == 1 }").contains("t.dsl:1:16: error: unexpected `==`"));
    // Tab before the caret column is kept so that the caret lines up.
    assert!(parse_err("fn f() {\n\t\t)\n}").contains("2 | \t\t)\n  | \t\t^\n"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [50, 150, 250, 1_000, 100_000] {
        let text = format!("fn f() = {}x{}", "(".repeat(depth), ")".repeat(depth));
        let result = std::thread::Builder::new()
            .stack_size(2 << 20) // the default for test threads
            .spawn(move || parse(&text).map(|_| ()).map_err(|(_, d)| d.message))
            .unwrap()
            .join()
            .expect("parser panicked");
        match result {
            Ok(()) => assert!(depth <= 150, "depth {depth} parsed"),
            Err(m) => assert!(depth > 150 && m.contains("nested too deeply"), "depth {depth}: {m}"),
        }
    }
    let chain = format!("fn f() = x{}", " ** x".repeat(10_000));
    let _ = parse(&chain);
    let long = format!("fn f() = x{}", " + x".repeat(20_000));
    assert!(parse(&long).is_ok());
}

const SAMPLES: &[&str] = &[
    include_str!("data/constructs.dsl"),
    "model M(d: int = 4) {\n  l = Linear(d, d)\n  entry run(x: f32[B, d]) -> f32[B, d] {\n    return l(x)[:, ...] ** 2\n  }\n}\n",
];

#[test]
fn every_prefix_parses_or_fails_cleanly() {
    for sample in SAMPLES {
        for (i, _) in sample.char_indices() {
            let _ = parse(&sample[..i]);
        }
    }
}

/// A small deterministic generator (xorshift) so that the test needs no dependency.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn garbage_never_panics() {
    let mut next = rng(0x9e37_79b9_7f4a_7c15);
    let alphabet: Vec<char> = "()[]{}.,:;=+-*/%@!<>&|\"_ \n\tabcfxyz019eE.\u{e9}\u{1F600}"
        .chars()
        .collect();
    let tokens = [
        "fn ",
        "model ",
        "block ",
        "let ",
        "loop ",
        "for ",
        "in ",
        "0..",
        "return ",
        "next ",
        "emit ",
        "if ",
        "else ",
        "max ",
        "carry ",
        "until ",
        "param ",
        "import ",
        "std.",
        "\"x.dsl\"",
        "None",
        "...",
        "f32[",
        "->",
        "x",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        "=",
        "**",
        "1e-5",
        "99999999999999999999",
        "/*",
        "//",
        "\n",
    ];
    for _ in 0..3_000 {
        let len = (next() % 60) as usize;
        let text: String = if next().is_multiple_of(2) {
            (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        } else {
            (0..len)
                .map(|_| tokens[(next() % tokens.len() as u64) as usize])
                .collect()
        };
        if let Err((sources, d)) = parse(&text) {
            let _ = d.render(&sources);
        }
    }
    // Random bytes, made valid UTF-8.
    for _ in 0..500 {
        let bytes: Vec<u8> = (0..(next() % 80)).map(|_| next() as u8).collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}
