//! The Kernel IR rewrites that kernel generation runs after fusion: loop-invariant code motion
//! (what moves, where to, and what stays), division by a loop invariant as a multiplication by
//! its reciprocal, one `let` for an invariant that several loops hoist, and a reduction's
//! transcendental term stored for the output loop to read back.

use mlc_ir::kernel::{hoist_invariants, reciprocal_of_invariant_divisors, reuse_reduction_terms};
use mlc_ir::{Access, BinaryOp, DType, IExpr, KBuf, KStmt, KernelFn, Scalar, UnaryOp, VExpr, print_kernel};

fn f(x: f32) -> VExpr {
    VExpr::Const(Scalar::F32(x))
}

fn var(v: u32) -> VExpr {
    VExpr::Var(v)
}

fn bin(op: BinaryOp, a: VExpr, b: VExpr) -> VExpr {
    VExpr::Binary(op, Box::new(a), Box::new(b))
}

fn exp(x: VExpr) -> VExpr {
    VExpr::Unary(UnaryOp::Exp, Box::new(x))
}

/// Element `i` of row `i0` of buffer `buf` (rows of 8).
fn row(i: u32) -> IExpr {
    IExpr::Var(0) * IExpr::Const(8) + IExpr::Var(i)
}

fn row_load(buf: u32, i: u32) -> VExpr {
    VExpr::Load { buf, index: row(i) }
}

fn acc(v: u32, init: f32) -> KStmt {
    KStmt::Acc {
        var: v,
        dtype: DType::F32,
        init: f(init),
    }
}

fn lp(v: u32, extent: i64, body: Vec<KStmt>) -> KStmt {
    KStmt::Loop {
        var: v,
        extent: IExpr::Const(extent),
        vectorize: false,
        body,
    }
}

fn assign(v: u32, value: VExpr) -> KStmt {
    KStmt::Assign { var: v, value }
}

fn store(buf: u32, i: u32, value: VExpr) -> KStmt {
    KStmt::Store {
        buf,
        index: row(i),
        value,
    }
}

fn kernel(body: Vec<KStmt>) -> KernelFn {
    let buf = |name: &str, access| KBuf {
        name: name.into(),
        dtype: DType::F32,
        access,
    };
    KernelFn {
        name: "k".into(),
        bufs: vec![buf("x", Access::Read), buf("y", Access::Write)],
        dims: vec![],
        parallel: (0, IExpr::Const(4)),
        body,
    }
}

/// Softmax over rows of 8 as fusion writes it: max, sum of `exp(x - safe max)`, then
/// `exp(x - safe max) / sum`, the safe maximum inlined into both loops. `extent2` is the
/// output loop's extent.
fn softmax(extent2: i64) -> KernelFn {
    let safe_max = || {
        VExpr::Select(
            Box::new(bin(BinaryOp::Gt, var(3), f(f32::NEG_INFINITY))),
            Box::new(var(3)),
            Box::new(f(0.0)),
        )
    };
    kernel(vec![
        acc(3, f32::NEG_INFINITY),
        lp(2, 8, vec![assign(3, bin(BinaryOp::Max, var(3), row_load(0, 2)))]),
        acc(5, 0.0),
        lp(
            4,
            8,
            vec![assign(
                5,
                bin(
                    BinaryOp::Add,
                    var(5),
                    exp(bin(BinaryOp::Sub, row_load(0, 4), safe_max())),
                ),
            )],
        ),
        lp(
            1,
            extent2,
            vec![store(
                1,
                1,
                bin(
                    BinaryOp::Div,
                    exp(bin(BinaryOp::Sub, row_load(0, 1), safe_max())),
                    var(5),
                ),
            )],
        ),
    ])
}

/// What kernel generation runs, in its order.
fn rewrite(k: &mut KernelFn) {
    reciprocal_of_invariant_divisors(k);
    hoist_invariants(k);
    reuse_reduction_terms(k);
}

fn lines(k: &KernelFn) -> Vec<String> {
    print_kernel(k).lines().map(|l| l.trim().to_string()).collect()
}

#[test]
fn softmax_computes_exp_once_per_element_and_multiplies_by_the_reciprocal() {
    let mut k = softmax(8);
    rewrite(&mut k);
    let text = print_kernel(&k);
    let l = lines(&k);
    // One `let` for the safe maximum, hoisted from both loops.
    assert_eq!(text.matches("select(gt(v3, -inf), v3, 0.0)").count(), 1, "{text}");
    // The sum loop stores its term into the output and adds the same variable.
    let term = l
        .iter()
        .position(|s| s.starts_with("let v") && s.contains("= exp(sub(x[i0*8 + i4], v"))
        .unwrap_or_else(|| panic!("no stored term in\n{text}"));
    let t = l[term]
        .split(':')
        .next()
        .unwrap()
        .trim_start_matches("let ")
        .to_string();
    assert_eq!(l[term + 1], format!("y[i0*8 + i4] = {t}"), "{text}");
    assert_eq!(l[term + 2], format!("v5 = add(v5, {t})"), "{text}");
    // The reciprocal of the sum once per row, and the output loop reads the stored term.
    assert!(l.iter().any(|s| s.ends_with("= recip(v5)")), "{text}");
    assert!(
        l.iter().any(|s| s.starts_with("y[i0*8 + i1] = mul(y[i0*8 + i1], v")),
        "{text}"
    );
    assert_eq!(text.matches("exp(").count(), 1, "{text}");
    assert!(!text.contains("div("), "{text}");
}

#[test]
fn a_term_is_not_reused_across_loops_of_different_extents() {
    let mut k = softmax(7);
    rewrite(&mut k);
    let text = print_kernel(&k);
    assert_eq!(text.matches("exp(").count(), 2, "{text}");
    assert!(!text.contains("= y["), "{text}");
}

#[test]
fn a_cheap_term_is_recomputed_rather_than_stored() {
    // Variance then normalise, layer-norm style: the squared difference is cheaper to
    // recompute than to store and load.
    let d = || bin(BinaryOp::Sub, row_load(0, 2), f(1.0));
    let mut k = kernel(vec![
        acc(3, 0.0),
        lp(
            2,
            8,
            vec![assign(3, bin(BinaryOp::Add, var(3), bin(BinaryOp::Mul, d(), d())))],
        ),
        lp(
            1,
            8,
            vec![store(
                1,
                1,
                bin(
                    BinaryOp::Mul,
                    bin(BinaryOp::Sub, row_load(0, 1), f(1.0)),
                    bin(BinaryOp::Sub, row_load(0, 1), f(1.0)),
                ),
            )],
        ),
    ]);
    let before = print_kernel(&k);
    reuse_reduction_terms(&mut k);
    assert_eq!(print_kernel(&k), before);
}

#[test]
fn a_buffer_stored_twice_is_not_a_place_for_terms() {
    let mut k = softmax(8);
    // A second store to `y` (an extra loop writing it): the term could land where that loop
    // reads or writes, so nothing is reused.
    k.body.push(lp(6, 8, vec![store(1, 6, f(0.0))]));
    rewrite(&mut k);
    assert_eq!(print_kernel(&k).matches("exp(").count(), 2);
}

#[test]
fn only_loop_invariant_float_divisors_become_reciprocals() {
    let mut k = kernel(vec![
        acc(3, 1.0),
        // Outside any loop: once per row, left as a division.
        KStmt::Let {
            var: 4,
            dtype: DType::F32,
            value: bin(BinaryOp::Div, var(3), f(3.0)),
        },
        lp(
            1,
            8,
            vec![
                // Varying divisor: stays.
                store(1, 1, bin(BinaryOp::Div, f(1.0), row_load(0, 1))),
                // An accumulator assigned in this loop is not invariant: stays.
                assign(
                    3,
                    bin(BinaryOp::Add, var(3), bin(BinaryOp::Div, row_load(0, 1), var(3))),
                ),
            ],
        ),
        lp(2, 8, vec![store(1, 2, bin(BinaryOp::Div, row_load(0, 2), var(4)))]),
    ]);
    reciprocal_of_invariant_divisors(&mut k);
    let text = print_kernel(&k);
    assert!(text.contains("let v4: f32 = div(v3, 3.0)"), "{text}");
    assert!(text.contains("div(1.0, x[i0*8 + i1])"), "{text}");
    assert!(text.contains("div(x[i0*8 + i1], v3)"), "{text}");
    assert!(text.contains("mul(x[i0*8 + i2], recip(v4))"), "{text}");
}

#[test]
fn an_invariant_is_not_shared_across_an_assignment_to_what_it_reads() {
    // `v3 * 2` is hoisted from both loops, but the first loop's accumulation changes `v3` in
    // between: two `let`s.
    let twice = || bin(BinaryOp::Mul, var(3), f(2.0));
    let mut k = kernel(vec![
        acc(3, 1.0),
        lp(1, 8, vec![store(1, 1, bin(BinaryOp::Add, row_load(0, 1), twice()))]),
        lp(2, 8, vec![assign(3, bin(BinaryOp::Add, var(3), row_load(0, 2)))]),
        lp(5, 8, vec![store(1, 5, bin(BinaryOp::Add, row_load(0, 5), twice()))]),
    ]);
    hoist_invariants(&mut k);
    let text = print_kernel(&k);
    assert_eq!(text.matches("= mul(v3, 2.0)").count(), 2, "{text}");
    // Without the assignment in between, one `let` serves both loops.
    k = kernel(vec![
        acc(3, 1.0),
        lp(1, 8, vec![store(1, 1, bin(BinaryOp::Add, row_load(0, 1), twice()))]),
        lp(5, 8, vec![store(1, 5, bin(BinaryOp::Add, row_load(0, 5), twice()))]),
    ]);
    hoist_invariants(&mut k);
    let text = print_kernel(&k);
    assert_eq!(text.matches("= mul(v3, 2.0)").count(), 1, "{text}");
}

// ---------------------------------------------------------------- hoisting

fn load(buf: u32, i: u32) -> VExpr {
    VExpr::Load {
        buf,
        index: IExpr::Var(i),
    }
}

fn buf(name: &str, access: Access) -> KBuf {
    KBuf {
        name: name.into(),
        dtype: DType::F32,
        access,
    }
}

/// A layer-norm-like row: a sum, then a loop reading `sum / 8` and `rsqrt(sum / 8 + eps)` per
/// element, an accumulator updated inside (variant), a nested loop whose invariant climbs out.
fn layer_norm_like() -> KernelFn {
    let mean = || bin(BinaryOp::Div, var(3), f(8.0));
    let scale = VExpr::Unary(UnaryOp::Rsqrt, Box::new(bin(BinaryOp::Add, mean(), f(1e-5))));
    KernelFn {
        name: "k".into(),
        bufs: vec![buf("x", Access::Read), buf("y", Access::Write)],
        dims: vec![],
        parallel: (0, IExpr::Const(4)),
        body: vec![
            KStmt::Acc {
                var: 3,
                dtype: DType::F32,
                init: f(0.0),
            },
            KStmt::Loop {
                var: 1,
                extent: IExpr::Const(8),
                vectorize: false,
                body: vec![KStmt::Assign {
                    var: 3,
                    value: bin(BinaryOp::Add, var(3), load(0, 1)),
                }],
            },
            KStmt::Acc {
                var: 5,
                dtype: DType::F32,
                init: f(0.0),
            },
            KStmt::Loop {
                var: 2,
                extent: IExpr::Const(8),
                vectorize: true,
                body: vec![
                    // `v5 * 2` reads an accumulator assigned in this loop: it stays.
                    KStmt::Assign {
                        var: 5,
                        value: bin(BinaryOp::Add, var(5), bin(BinaryOp::Mul, var(5), f(2.0))),
                    },
                    KStmt::Store {
                        buf: 1,
                        index: IExpr::Var(2),
                        value: bin(
                            BinaryOp::Mul,
                            bin(BinaryOp::Sub, load(0, 2), mean()),
                            bin(BinaryOp::Add, scale, VExpr::Index(IExpr::Var(0)).cast_f32()),
                        ),
                    },
                    KStmt::Loop {
                        var: 6,
                        extent: IExpr::Const(2),
                        vectorize: false,
                        body: vec![KStmt::Store {
                            buf: 1,
                            index: IExpr::Var(6),
                            value: bin(BinaryOp::Add, load(0, 6), VExpr::Unary(UnaryOp::Exp, Box::new(mean()))),
                        }],
                    },
                ],
            },
        ],
    }
}

trait CastF32 {
    fn cast_f32(self) -> VExpr;
}

impl CastF32 for VExpr {
    fn cast_f32(self) -> VExpr {
        VExpr::Cast(DType::F32, Box::new(self))
    }
}

#[test]
fn invariants_move_before_their_loop_and_variant_work_stays() {
    let mut k = layer_norm_like();
    hoist_invariants(&mut k);
    let text = print_kernel(&k);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no line starting `{needle}` in\n{text}"))
    };
    // Each maximal invariant expression once, before the loop it was found in: `sum / 8`
    // (one variable for both of its uses in the store), `rsqrt(sum / 8 + eps)`, and the nested
    // loop's `exp(sum / 8)`, which climbs out of both loops.
    let second_loop = at("for i2 in 0..8 vectorize {");
    for value in ["div(v3, 8.0)", "rsqrt(add(div(v3, 8.0), 1e-5))", "exp(div(v3, 8.0))"] {
        let line = lines
            .iter()
            .position(|l| l.starts_with("let ") && l.ends_with(&format!("= {value}")))
            .unwrap_or_else(|| panic!("`{value}` was not hoisted:\n{text}"));
        assert!(line < second_loop, "{text}");
    }
    assert_eq!(text.matches("div(v3, 8.0)").count(), 3, "{text}");
    // Loads, index expressions and the accumulator updated in the loop stay inside.
    assert!(text.contains("v5 = add(v5, mul(v5, 2.0))"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("y[i2] = mul(sub(x[i2], v") && l.contains("cast<f32>(index(i0))")),
        "{text}"
    );
    assert!(lines.iter().any(|l| l.starts_with("y[i6] = add(x[i6], v")), "{text}");
    // Nothing left to hoist: a second run changes nothing.
    let again = {
        let mut k2 = k.clone();
        hoist_invariants(&mut k2);
        print_kernel(&k2)
    };
    assert_eq!(again, text);
}

#[test]
fn a_kernel_without_invariants_is_unchanged() {
    let mut k = layer_norm_like();
    // Keep only the first (pure reduction) loop.
    k.body.truncate(2);
    let before = print_kernel(&k);
    hoist_invariants(&mut k);
    assert_eq!(print_kernel(&k), before);
}
