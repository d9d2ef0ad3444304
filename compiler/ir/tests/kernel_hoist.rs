//! Loop-invariant code motion on the Kernel IR: what moves, where to, and what stays.

use mlc_ir::kernel::hoist_invariants;
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
fn kernel() -> KernelFn {
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
    let mut k = kernel();
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
    let mut k = kernel();
    // Keep only the first (pure reduction) loop.
    k.body.truncate(2);
    let before = print_kernel(&k);
    hoist_invariants(&mut k);
    assert_eq!(print_kernel(&k), before);
}
