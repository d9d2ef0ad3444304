//! The Cranelift JIT against independent scalar Rust evaluations of the same kernels.
//!
//! Every expected value here is computed by plain Rust written for the test (the interpreter's
//! semantics: floor division, Python remainder, NaN-ignoring max/min, saturating casts), never by
//! the code under test. Kernels are built by hand.

use std::time::Instant;

use mlc_ir::{Access, BinaryOp, DType, IExpr, KBuf, KStmt, KernelFn, Op, Scalar, UnaryOp, VExpr};
use mlc_runtime::cpu::jit::{JitError, JitModule, JitOptions, JitTuning};

// ---------------------------------------------------------------- building kernels

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

fn iv(v: u32) -> IExpr {
    IExpr::Var(v)
}

fn dim(d: u32) -> IExpr {
    IExpr::Dim(d)
}

fn c(x: i64) -> IExpr {
    IExpr::Const(x)
}

fn add(a: IExpr, b: IExpr) -> IExpr {
    a + b
}

fn mul(a: IExpr, b: IExpr) -> IExpr {
    a * b
}

fn idiv(a: IExpr, b: IExpr) -> IExpr {
    a / b
}

fn irem(a: IExpr, b: IExpr) -> IExpr {
    a % b
}

fn ld(buf: u32, index: IExpr) -> VExpr {
    VExpr::Load { buf, index }
}

fn un(op: UnaryOp, x: VExpr) -> VExpr {
    VExpr::Unary(op, Box::new(x))
}

fn bin(op: BinaryOp, a: VExpr, b: VExpr) -> VExpr {
    VExpr::Binary(op, Box::new(a), Box::new(b))
}

fn f(x: f32) -> VExpr {
    VExpr::Const(Scalar::F32(x))
}

fn sel(c: VExpr, a: VExpr, b: VExpr) -> VExpr {
    VExpr::Select(Box::new(c), Box::new(a), Box::new(b))
}

fn cast(d: DType, x: VExpr) -> VExpr {
    VExpr::Cast(d, Box::new(x))
}

fn store(buf: u32, index: IExpr, value: VExpr) -> KStmt {
    KStmt::Store { buf, index, value }
}

fn lp(var: u32, extent: IExpr, vectorize: bool, body: Vec<KStmt>) -> KStmt {
    KStmt::Loop {
        var,
        extent,
        vectorize,
        body,
    }
}

fn kernel(name: &str, bufs: Vec<KBuf>, dims: &[&str], extent: IExpr, body: Vec<KStmt>) -> KernelFn {
    KernelFn {
        name: name.into(),
        bufs,
        dims: dims.iter().map(|d| d.to_string()).collect(),
        parallel: (0, extent),
        body,
    }
}

/// An elementwise kernel `out[i] = value(i)` over `0..dims[0]`: either the parallel index does
/// the work (`vector == false`) or one parallel step runs a `vectorize` loop over all of it.
fn elementwise(name: &str, bufs: Vec<KBuf>, vector: bool, value: impl Fn(IExpr) -> VExpr) -> KernelFn {
    let out = (bufs.len() - 1) as u32;
    if vector {
        let body = vec![lp(1, dim(0), true, vec![store(out, iv(1), value(iv(1)))])];
        kernel(name, bufs, &["n"], c(1), body)
    } else {
        kernel(name, bufs, &["n"], dim(0), vec![store(out, iv(0), value(iv(0)))])
    }
}

// ---------------------------------------------------------------- buffers and calls

#[derive(Clone, Debug, PartialEq)]
enum Buf {
    F32(Vec<f32>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Buf {
    fn ptr(&mut self) -> *mut u8 {
        match self {
            Buf::F32(v) => v.as_mut_ptr().cast(),
            Buf::I32(v) => v.as_mut_ptr().cast(),
            Buf::I64(v) => v.as_mut_ptr().cast(),
            Buf::Bool(v) => v.as_mut_ptr().cast(),
        }
    }

    fn f32(&self) -> &[f32] {
        match self {
            Buf::F32(v) => v,
            b => panic!("not f32: {b:?}"),
        }
    }
}

/// Calls kernel `i` of `jit` over `lo..hi`.
///
/// Callers size every buffer for every index the kernel touches with these dims and this range.
fn call(jit: &JitModule, i: usize, bufs: &mut [Buf], dims: &[i64], lo: i64, hi: i64) {
    let ptrs: Vec<*mut u8> = bufs.iter_mut().map(Buf::ptr).collect();
    // SAFETY: each pointer is the base of a live `Vec` of the buffer's dtype (bool as Rust
    // `bool`, one byte holding 0 or 1, which is all the kernels write); the tests size each
    // vector for every index the kernel computes with these dims over `lo..hi`; `bufs` is
    // borrowed mutably for the call, so nothing else touches the memory.
    unsafe { jit.call(i, &ptrs, dims, lo, hi) }
}

/// Compiles with the exact tuning (libm `exp`, only marked loops vectorized, scalar
/// reductions): what the tests below compare bit for bit.
/// `y[i] = value(i)` over `xs` (buffer 0) with the default options and tuning, as scalar or
/// SIMD code; returns `y`.
fn map_f32_default(xs: &[f32], vector: bool, value: impl Fn(IExpr) -> VExpr) -> Vec<f32> {
    let k = elementwise("f", vec![rd("x", DType::F32), wr("y", DType::F32)], vector, value);
    let jit = compile_tuned(&k, JitOptions::default(), JitTuning::default());
    let n = xs.len();
    let mut bufs = [Buf::F32(xs.to_vec()), Buf::F32(vec![0.0; n])];
    call(&jit, 0, &mut bufs, &[n as i64], 0, if vector { 1 } else { n as i64 });
    bufs[1].f32().to_vec()
}

fn compile(k: &KernelFn, opts: JitOptions) -> JitModule {
    compile_tuned(k, opts, exact())
}

fn compile_tuned(k: &KernelFn, opts: JitOptions, tuning: JitTuning) -> JitModule {
    JitModule::compile_tuned(std::slice::from_ref(k), &opts, &tuning).unwrap_or_else(|e| panic!("{e}"))
}

fn exact() -> JitTuning {
    JitTuning {
        vectorize_reductions: false,
        vectorize_unmarked: false,
        poly_math: false,
    }
}

fn no_fma() -> JitOptions {
    JitOptions {
        fma: false,
        vectorize: true,
    }
}

fn scalar_only() -> JitOptions {
    JitOptions {
        fma: false,
        vectorize: false,
    }
}

/// Bitwise equality, any NaN equal to any NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// As [`same`], but `+0 == -0` (the sign of a zero from `max(-0, +0)` is unspecified in Rust).
fn same_mod_zero_sign(a: f32, b: f32) -> bool {
    same(a, b) || (a == 0.0 && b == 0.0)
}

fn assert_f32s(what: &str, got: &[f32], want: &[f32], eq: fn(f32, f32) -> bool) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            eq(*g, *w),
            "{what}[{i}]: got {g:?} ({:#x}), want {w:?} ({:#x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

// ---------------------------------------------------------------- reference semantics

const F32_VALUES: [f32; 26] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    3.7,
    -3.7,
    7.0,
    -7.0,
    0.1,
    1e-30,
    -1e-30,
    1e30,
    -1e30,
    88.5,
    -100.0,
    3e9,
    -3e9,
    f32::INFINITY,
    f32::NEG_INFINITY,
    f32::NAN,
    f32::MIN_POSITIVE,
];

const I64_VALUES: [i64; 14] = [0, 1, -1, 2, -2, 3, -3, 7, -7, 10, 100, -100, i64::MAX, i64::MIN];
const I32_VALUES: [i32; 14] = [0, 1, -1, 2, -2, 3, -3, 7, -7, 10, 100, -100, i32::MAX, i32::MIN];

fn ref_unary_f32(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Erf => mlc_runtime::interp::erf(f64::from(x)) as f32,
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Round => x.round_ties_even(),
        UnaryOp::Sign => {
            if x.is_nan() || x == 0.0 {
                x
            } else {
                1f32.copysign(x)
            }
        }
        UnaryOp::Not => unreachable!(),
    }
}

/// Python's `a % b` for floats: the result takes the divisor's sign.
fn py_rem_f32(a: f32, b: f32) -> f32 {
    let r = a % b; // exact (fmod)
    let r = if r != 0.0 && (r < 0.0) != (b < 0.0) { r + b } else { r };
    if r == 0.0 { 0f32.copysign(b) } else { r }
}

/// `f32::max`/`f32::min`: a NaN operand is ignored.
fn ref_max(a: f32, b: f32, max: bool) -> f32 {
    match (a.is_nan(), b.is_nan()) {
        (true, _) => b,
        (_, true) => a,
        _ if max => {
            if a >= b {
                a
            } else {
                b
            }
        }
        _ => {
            if a <= b {
                a
            } else {
                b
            }
        }
    }
}

fn ref_binary_f32(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Rem => py_rem_f32(a, b),
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => ref_max(a, b, true),
        BinaryOp::Min => ref_max(a, b, false),
        _ => unreachable!(),
    }
}

fn ref_compare<T: PartialOrd>(op: BinaryOp, a: T, b: T) -> bool {
    match op {
        BinaryOp::Eq => a == b,
        BinaryOp::Ne => a != b,
        BinaryOp::Lt => a < b,
        BinaryOp::Le => a <= b,
        BinaryOp::Gt => a > b,
        BinaryOp::Ge => a >= b,
        _ => unreachable!(),
    }
}

/// Integer ops in `i128` (no overflow), wrapped to `bits` at the end. Floor division and the
/// divisor-signed remainder come from Euclidean division on magnitudes; a zero divisor and a
/// negative exponent give 0 (the JIT's documented behaviour where the interpreter errors).
fn ref_binary_int(op: BinaryOp, a: i64, b: i64, bits: u32) -> i64 {
    let (x, y) = (i128::from(a), i128::from(b));
    let r: i128 = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div | BinaryOp::Rem if y == 0 => 0,
        BinaryOp::Div => {
            // floor(x / y) = div_euclid for y > 0; for y < 0, floor(x/y) = floor(-x / -y).
            if y > 0 { x.div_euclid(y) } else { (-x).div_euclid(-y) }
        }
        BinaryOp::Rem => {
            let q = if y > 0 { x.div_euclid(y) } else { (-x).div_euclid(-y) };
            x - q * y
        }
        BinaryOp::Pow if b < 0 => 0,
        BinaryOp::Pow => {
            // Square-and-multiply modulo 2^bits over the exponent's bits, low to high.
            let m: u128 = if bits == 64 { u64::MAX.into() } else { u32::MAX.into() };
            let (mut acc, mut sq): (u128, u128) = (1, (x as u128) & m);
            for bit in 0..63 {
                if (b >> bit) & 1 == 1 {
                    acc = acc.wrapping_mul(sq) & m;
                }
                sq = sq.wrapping_mul(sq) & m;
            }
            // Back to a signed value of `bits` bits.
            if bits == 64 {
                i128::from(acc as u64 as i64)
            } else {
                i128::from(acc as u32 as i32)
            }
        }
        BinaryOp::Max => x.max(y),
        BinaryOp::Min => x.min(y),
        _ => unreachable!(),
    };
    if bits == 64 { r as i64 } else { i64::from(r as i32) }
}

// ---------------------------------------------------------------- tests

#[test]
fn bias_add_relu_with_broadcast_all_tail_sizes() {
    // out[r, j] = max(x[r, j] + b[j], 0) over rows x n
    for vector in [false, true] {
        let body = vec![lp(
            1,
            dim(1),
            vector,
            vec![store(
                2,
                add(mul(iv(0), dim(1)), iv(1)),
                bin(
                    BinaryOp::Max,
                    bin(BinaryOp::Add, ld(0, add(mul(iv(0), dim(1)), iv(1))), ld(1, iv(1))),
                    f(0.0),
                ),
            )],
        )];
        let k = kernel(
            "bias_relu",
            vec![rd("x", DType::F32), rd("b", DType::F32), wr("out", DType::F32)],
            &["rows", "n"],
            dim(0),
            body,
        );
        let jit = compile(&k, JitOptions::default());
        assert_eq!(jit.vectorized_loops(0), usize::from(vector));
        for n in [1usize, 3, 4, 5, 7, 8, 1023] {
            let rows = 3;
            let x: Vec<f32> = (0..rows * n)
                .map(|i| {
                    if i % 11 == 5 {
                        f32::NAN
                    } else {
                        (i as f32 * 0.37).sin() * 4.0
                    }
                })
                .collect();
            let b: Vec<f32> = (0..n).map(|j| j as f32 * 0.01 - 1.0).collect();
            let want: Vec<f32> = (0..rows * n)
                .map(|i| {
                    let s = x[i] + b[i % n];
                    if s.is_nan() || s < 0.0 { 0.0 } else { s }
                })
                .collect();
            let mut bufs = [Buf::F32(x), Buf::F32(b), Buf::F32(vec![-9.0; rows * n])];
            call(&jit, 0, &mut bufs, &[rows as i64, n as i64], 0, rows as i64);
            assert_f32s(
                &format!("bias_relu n={n} vector={vector}"),
                bufs[2].f32(),
                &want,
                same_mod_zero_sign,
            );
        }
    }
}

#[test]
fn every_f32_unary_op_matches_scalar_semantics() {
    let xs: Vec<f32> = F32_VALUES
        .iter()
        .copied()
        .chain((0..37).map(|i| i as f32 * 0.73 - 13.0))
        .collect();
    let n = xs.len();
    for op in Op::UNARY {
        if op == UnaryOp::Not {
            continue;
        }
        let want: Vec<f32> = xs.iter().map(|&x| ref_unary_f32(op, x)).collect();
        for vector in [false, true] {
            let k = elementwise("u", vec![rd("x", DType::F32), wr("y", DType::F32)], vector, |i| {
                un(op, ld(0, i))
            });
            let jit = compile(&k, JitOptions::default());
            let mut bufs = [Buf::F32(xs.clone()), Buf::F32(vec![0.0; n])];
            call(&jit, 0, &mut bufs, &[n as i64], 0, if vector { 1 } else { n as i64 });
            assert_f32s(&format!("{op:?} vector={vector}"), bufs[1].f32(), &want, same);
            if vector && !matches!(op, UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round) {
                // Every f32 op has a vector form (callouts lane by lane); rounding needs SSE4.1
                // on x86-64.
                assert_eq!(jit.vectorized_loops(0), 1, "{op:?}");
            }
        }
    }
}

#[test]
fn integer_and_bool_unary_ops() {
    for op in [UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign] {
        let r = |x: i64| match op {
            UnaryOp::Neg => x.wrapping_neg(),
            UnaryOp::Abs => x.wrapping_abs(),
            _ => x.signum(),
        };
        let k = elementwise("u64", vec![rd("x", DType::I64), wr("y", DType::I64)], false, |i| {
            un(op, ld(0, i))
        });
        let jit = compile(&k, JitOptions::default());
        let n = I64_VALUES.len();
        let mut bufs = [Buf::I64(I64_VALUES.to_vec()), Buf::I64(vec![0; n])];
        call(&jit, 0, &mut bufs, &[n as i64], 0, n as i64);
        let want: Vec<i64> = I64_VALUES.iter().map(|&x| r(x)).collect();
        assert_eq!(bufs[1], Buf::I64(want), "{op:?} i64");

        let k = elementwise("u32", vec![rd("x", DType::I32), wr("y", DType::I32)], false, |i| {
            un(op, ld(0, i))
        });
        let jit = compile(&k, JitOptions::default());
        let mut bufs = [Buf::I32(I32_VALUES.to_vec()), Buf::I32(vec![0; n])];
        call(&jit, 0, &mut bufs, &[n as i64], 0, n as i64);
        let want: Vec<i32> = I32_VALUES
            .iter()
            .map(|&x| match op {
                UnaryOp::Neg => x.wrapping_neg(),
                UnaryOp::Abs => x.wrapping_abs(),
                _ => x.signum(),
            })
            .collect();
        assert_eq!(bufs[1], Buf::I32(want), "{op:?} i32");
    }
    let k = elementwise("not", vec![rd("x", DType::Bool), wr("y", DType::Bool)], false, |i| {
        un(UnaryOp::Not, ld(0, i))
    });
    let jit = compile(&k, JitOptions::default());
    let mut bufs = [Buf::Bool(vec![true, false, false, true]), Buf::Bool(vec![false; 4])];
    call(&jit, 0, &mut bufs, &[4], 0, 4);
    assert_eq!(bufs[1], Buf::Bool(vec![false, true, true, false]));
}

/// All pairs of `vals`, as two flat operand vectors.
fn pairs<T: Copy>(vals: &[T]) -> (Vec<T>, Vec<T>) {
    let a = vals.iter().flat_map(|&x| vals.iter().map(move |_| x)).collect();
    let b = vals.iter().flat_map(|_| vals.iter().copied()).collect();
    (a, b)
}

#[test]
fn every_f32_binary_op_matches_scalar_semantics() {
    let (a, b) = pairs(&F32_VALUES);
    let n = a.len();
    for op in Op::BINARY {
        if op.is_logical() {
            continue;
        }
        for vector in [false, true] {
            let out_dtype = if op.is_comparison() { DType::Bool } else { DType::F32 };
            let k = elementwise(
                "b",
                vec![rd("a", DType::F32), rd("b", DType::F32), wr("y", out_dtype)],
                vector,
                |i| bin(op, ld(0, i.clone()), ld(1, i)),
            );
            let jit = compile(&k, JitOptions::default());
            let out = if op.is_comparison() {
                Buf::Bool(vec![false; n])
            } else {
                Buf::F32(vec![0.0; n])
            };
            let mut bufs = [Buf::F32(a.clone()), Buf::F32(b.clone()), out];
            call(&jit, 0, &mut bufs, &[n as i64], 0, if vector { 1 } else { n as i64 });
            if op.is_comparison() {
                let want: Vec<bool> = a.iter().zip(&b).map(|(&x, &y)| ref_compare(op, x, y)).collect();
                assert_eq!(bufs[2], Buf::Bool(want), "{op:?}");
            } else {
                let want: Vec<f32> = a.iter().zip(&b).map(|(&x, &y)| ref_binary_f32(op, x, y)).collect();
                let eq = if matches!(op, BinaryOp::Max | BinaryOp::Min) {
                    same_mod_zero_sign
                } else {
                    same
                };
                assert_f32s(&format!("{op:?} vector={vector}"), bufs[2].f32(), &want, eq);
            }
            if vector {
                // Comparisons store bool, which stays scalar.
                let vectorizable = !op.is_comparison();
                assert_eq!(jit.vectorized_loops(0), usize::from(vectorizable), "{op:?}");
            }
        }
    }
}

#[test]
fn every_integer_binary_op_matches_floor_semantics() {
    for (dtype, bits) in [(DType::I64, 64), (DType::I32, 32)] {
        let vals: Vec<i64> = if bits == 64 {
            I64_VALUES.to_vec()
        } else {
            I32_VALUES.iter().map(|&x| i64::from(x)).collect()
        };
        let (a, b) = pairs(&vals);
        let n = a.len();
        let wrap = |v: Vec<i64>| {
            if bits == 64 {
                Buf::I64(v)
            } else {
                Buf::I32(v.iter().map(|&x| x as i32).collect())
            }
        };
        for op in Op::BINARY {
            if op.is_logical() {
                continue;
            }
            let out_dtype = if op.is_comparison() { DType::Bool } else { dtype };
            let k = elementwise(
                "b",
                vec![rd("a", dtype), rd("b", dtype), wr("y", out_dtype)],
                false,
                |i| bin(op, ld(0, i.clone()), ld(1, i)),
            );
            let jit = compile(&k, JitOptions::default());
            let out = if op.is_comparison() {
                Buf::Bool(vec![false; n])
            } else {
                wrap(vec![0; n])
            };
            let mut bufs = [wrap(a.clone()), wrap(b.clone()), out];
            call(&jit, 0, &mut bufs, &[n as i64], 0, n as i64);
            let want = if op.is_comparison() {
                Buf::Bool(a.iter().zip(&b).map(|(&x, &y)| ref_compare(op, x, y)).collect())
            } else {
                wrap(
                    a.iter()
                        .zip(&b)
                        .map(|(&x, &y)| ref_binary_int(op, x, y, bits))
                        .collect(),
                )
            };
            assert_eq!(bufs[2], want, "{op:?} {dtype}");
        }
    }
    // The familiar cases, spelled out.
    let k = elementwise(
        "div",
        vec![rd("a", DType::I64), rd("b", DType::I64), wr("y", DType::I64)],
        false,
        |i| bin(BinaryOp::Div, ld(0, i.clone()), ld(1, i)),
    );
    let jit = compile(&k, JitOptions::default());
    let mut bufs = [
        Buf::I64(vec![-7, 7, -7, 7, 5, i64::MIN]),
        Buf::I64(vec![2, -2, -2, 2, 0, -1]),
        Buf::I64(vec![9; 6]),
    ];
    call(&jit, 0, &mut bufs, &[6], 0, 6);
    assert_eq!(bufs[2], Buf::I64(vec![-4, -4, 3, 3, 0, i64::MIN]));
}

#[test]
fn bool_binary_ops() {
    let (a, b) = pairs(&[false, true]);
    for op in [BinaryOp::And, BinaryOp::Or, BinaryOp::Xor, BinaryOp::Eq, BinaryOp::Ne] {
        let k = elementwise(
            "b",
            vec![rd("a", DType::Bool), rd("b", DType::Bool), wr("y", DType::Bool)],
            false,
            |i| bin(op, ld(0, i.clone()), ld(1, i)),
        );
        let jit = compile(&k, JitOptions::default());
        let mut bufs = [Buf::Bool(a.clone()), Buf::Bool(b.clone()), Buf::Bool(vec![false; 4])];
        call(&jit, 0, &mut bufs, &[4], 0, 4);
        let want: Vec<bool> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| match op {
                BinaryOp::And => x && y,
                BinaryOp::Or => x || y,
                BinaryOp::Xor => x ^ y,
                BinaryOp::Eq => x == y,
                _ => x != y,
            })
            .collect();
        assert_eq!(bufs[2], Buf::Bool(want), "{op:?}");
    }
    // Ordering comparisons are not defined on bool, as in the interpreter.
    let k = elementwise(
        "lt",
        vec![rd("a", DType::Bool), rd("b", DType::Bool), wr("y", DType::Bool)],
        false,
        |i| bin(BinaryOp::Lt, ld(0, i.clone()), ld(1, i)),
    );
    assert!(matches!(JitModule::compile(&[k]), Err(JitError::Unsupported { .. })));
}

fn buf_of(d: DType, n: usize) -> Buf {
    match d {
        DType::F32 => Buf::F32(vec![0.0; n]),
        DType::I32 => Buf::I32(vec![0; n]),
        DType::I64 => Buf::I64(vec![0; n]),
        _ => Buf::Bool(vec![false; n]),
    }
}

#[test]
fn casts_between_all_kernel_dtypes() {
    let fs: Vec<f32> = F32_VALUES
        .iter()
        .copied()
        .chain([2.9, -2.9, 9.3e18, -9.3e18, 2.2e9, -2.2e9])
        .collect();
    let is: Vec<i64> = I64_VALUES
        .iter()
        .copied()
        .chain([(1 << 53) + 1, (1 << 32) + 5, 16_777_217])
        .collect();
    let bs = vec![false, true, true, false];
    let sources: Vec<(DType, Buf)> = vec![
        (DType::F32, Buf::F32(fs.clone())),
        (DType::I64, Buf::I64(is.clone())),
        (DType::I32, Buf::I32(is.iter().map(|&x| x as i32).collect())),
        (DType::Bool, Buf::Bool(bs.clone())),
    ];
    for (from, src) in &sources {
        for to in [DType::F32, DType::I32, DType::I64, DType::Bool] {
            // Each source element as the test's own `f64`/`i64`/`bool` view.
            let want: Buf = match src {
                Buf::F32(v) => match to {
                    DType::F32 => Buf::F32(v.clone()),
                    DType::I32 => Buf::I32(v.iter().map(|&x| x as i32).collect()),
                    DType::I64 => Buf::I64(v.iter().map(|&x| x as i64).collect()),
                    _ => Buf::Bool(v.iter().map(|&x| x != 0.0).collect()),
                },
                Buf::I32(v) => match to {
                    DType::F32 => Buf::F32(v.iter().map(|&x| x as f32).collect()),
                    DType::I32 => Buf::I32(v.clone()),
                    DType::I64 => Buf::I64(v.iter().map(|&x| i64::from(x)).collect()),
                    _ => Buf::Bool(v.iter().map(|&x| x != 0).collect()),
                },
                Buf::I64(v) => match to {
                    DType::F32 => Buf::F32(v.iter().map(|&x| x as f32).collect()),
                    DType::I32 => Buf::I32(v.iter().map(|&x| x as i32).collect()),
                    DType::I64 => Buf::I64(v.clone()),
                    _ => Buf::Bool(v.iter().map(|&x| x != 0).collect()),
                },
                Buf::Bool(v) => match to {
                    DType::F32 => Buf::F32(v.iter().map(|&x| if x { 1.0 } else { 0.0 }).collect()),
                    DType::I32 => Buf::I32(v.iter().map(|&x| i32::from(x)).collect()),
                    DType::I64 => Buf::I64(v.iter().map(|&x| i64::from(x)).collect()),
                    _ => Buf::Bool(v.clone()),
                },
            };
            let n = match src {
                Buf::F32(v) => v.len(),
                Buf::I32(v) => v.len(),
                Buf::I64(v) => v.len(),
                Buf::Bool(v) => v.len(),
            };
            let k = elementwise("cast", vec![rd("x", *from), wr("y", to)], false, |i| cast(to, ld(0, i)));
            let jit = compile(&k, JitOptions::default());
            let mut bufs = [src.clone(), buf_of(to, n)];
            call(&jit, 0, &mut bufs, &[n as i64], 0, n as i64);
            match (&bufs[1], &want) {
                (Buf::F32(g), Buf::F32(w)) => assert_f32s(&format!("cast {from} -> {to}"), g, w, same),
                (g, w) => assert_eq!(g, w, "cast {from} -> {to}"),
            }
        }
    }
}

#[test]
fn select_on_every_dtype() {
    let cond = vec![true, false, false, true, true, false, true];
    let n = cond.len();
    let cases: Vec<(DType, Buf, Buf)> = vec![
        (
            DType::F32,
            Buf::F32((0..n).map(|i| i as f32).collect()),
            Buf::F32((0..n).map(|i| -(i as f32)).collect()),
        ),
        (
            DType::I32,
            Buf::I32((0..n as i32).collect()),
            Buf::I32((0..n as i32).map(|i| -i).collect()),
        ),
        (
            DType::I64,
            Buf::I64((0..n as i64).collect()),
            Buf::I64((0..n as i64).map(|i| 100 + i).collect()),
        ),
        (DType::Bool, Buf::Bool(vec![true; n]), Buf::Bool(vec![false; n])),
    ];
    for (d, a, b) in cases {
        let k = elementwise(
            "sel",
            vec![rd("c", DType::Bool), rd("a", d), rd("b", d), wr("y", d)],
            false,
            |i| sel(ld(0, i.clone()), ld(1, i.clone()), ld(2, i)),
        );
        let jit = compile(&k, JitOptions::default());
        let mut bufs = [Buf::Bool(cond.clone()), a.clone(), b.clone(), buf_of(d, n)];
        call(&jit, 0, &mut bufs, &[n as i64], 0, n as i64);
        let pick = |i: usize| cond[i];
        let want = match (&a, &b) {
            (Buf::F32(a), Buf::F32(b)) => Buf::F32((0..n).map(|i| if pick(i) { a[i] } else { b[i] }).collect()),
            (Buf::I32(a), Buf::I32(b)) => Buf::I32((0..n).map(|i| if pick(i) { a[i] } else { b[i] }).collect()),
            (Buf::I64(a), Buf::I64(b)) => Buf::I64((0..n).map(|i| if pick(i) { a[i] } else { b[i] }).collect()),
            (Buf::Bool(a), Buf::Bool(b)) => Buf::Bool((0..n).map(|i| if pick(i) { a[i] } else { b[i] }).collect()),
            _ => unreachable!(),
        };
        assert_eq!(bufs[3], want, "select {d}");
    }
}

/// Softmax over rows in three kernels: row max, exp and row sum, normalisation (vectorized).
#[test]
fn softmax_in_three_kernels() {
    let row = add(mul(iv(0), dim(1)), iv(1));
    let kmax = kernel(
        "softmax_max",
        vec![rd("x", DType::F32), wr("m", DType::F32)],
        &["rows", "n"],
        dim(0),
        vec![
            KStmt::Acc {
                var: 10,
                dtype: DType::F32,
                init: f(f32::NEG_INFINITY),
            },
            lp(
                1,
                dim(1),
                false,
                vec![KStmt::Assign {
                    var: 10,
                    value: bin(BinaryOp::Max, VExpr::Var(10), ld(0, row.clone())),
                }],
            ),
            store(1, iv(0), VExpr::Var(10)),
        ],
    );
    let kexp = kernel(
        "softmax_exp",
        vec![
            rd("x", DType::F32),
            rd("m", DType::F32),
            wr("e", DType::F32),
            wr("s", DType::F32),
        ],
        &["rows", "n"],
        dim(0),
        vec![
            KStmt::Acc {
                var: 10,
                dtype: DType::F32,
                init: f(0.0),
            },
            lp(
                1,
                dim(1),
                false,
                vec![
                    KStmt::Let {
                        var: 11,
                        dtype: DType::F32,
                        value: un(UnaryOp::Exp, bin(BinaryOp::Sub, ld(0, row.clone()), ld(1, iv(0)))),
                    },
                    store(2, row.clone(), VExpr::Var(11)),
                    KStmt::Assign {
                        var: 10,
                        value: bin(BinaryOp::Add, VExpr::Var(10), VExpr::Var(11)),
                    },
                ],
            ),
            store(3, iv(0), VExpr::Var(10)),
        ],
    );
    let knorm = kernel(
        "softmax_norm",
        vec![rd("e", DType::F32), rd("s", DType::F32), wr("y", DType::F32)],
        &["rows", "n"],
        dim(0),
        vec![lp(
            1,
            dim(1),
            true,
            vec![store(
                2,
                row.clone(),
                bin(BinaryOp::Div, ld(0, row.clone()), ld(1, iv(0))),
            )],
        )],
    );
    let jit = JitModule::compile_tuned(&[kmax, kexp, knorm], &JitOptions::default(), &exact()).unwrap();
    assert_eq!(jit.len(), 3);
    assert_eq!(jit.find("softmax_norm"), Some(2));
    assert_eq!(
        (
            jit.vectorized_loops(0),
            jit.vectorized_loops(1),
            jit.vectorized_loops(2)
        ),
        (0, 0, 1)
    );
    for n in [1usize, 5, 7, 1023] {
        let rows = 4;
        let x: Vec<f32> = (0..rows * n).map(|i| ((i * 7919) % 113) as f32 * 0.1 - 5.0).collect();
        let dims = [rows as i64, n as i64];
        let mut b0 = [Buf::F32(x.clone()), Buf::F32(vec![0.0; rows])];
        call(&jit, 0, &mut b0, &dims, 0, rows as i64);
        let m = b0[1].clone();
        let mut b1 = [
            Buf::F32(x.clone()),
            m.clone(),
            Buf::F32(vec![0.0; rows * n]),
            Buf::F32(vec![0.0; rows]),
        ];
        call(&jit, 1, &mut b1, &dims, 0, rows as i64);
        let (e, s) = (b1[2].clone(), b1[3].clone());
        let mut b2 = [e, s, Buf::F32(vec![0.0; rows * n])];
        call(&jit, 2, &mut b2, &dims, 0, rows as i64);

        // The same computation in plain Rust, in the same order.
        let mut want = vec![0f32; rows * n];
        let mut want_m = vec![0f32; rows];
        for r in 0..rows {
            let xr = &x[r * n..(r + 1) * n];
            let mx = xr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let ex: Vec<f32> = xr.iter().map(|&v| (v - mx).exp()).collect();
            let sum = ex.iter().fold(0f32, |a, &b| a + b);
            for j in 0..n {
                want[r * n + j] = ex[j] / sum;
            }
            want_m[r] = mx;
            let total: f32 = want[r * n..(r + 1) * n].iter().sum();
            assert!((total - 1.0).abs() < 1e-4);
        }
        assert_f32s("row max", m.f32(), &want_m, same);
        assert_f32s(&format!("softmax n={n}"), b2[2].f32(), &want, same);
    }
}

#[test]
fn iota_from_index_expressions() {
    // y[i] = 3*i + 1 (i64) and z[i] = f32(i) / 2
    let k = kernel(
        "iota",
        vec![wr("y", DType::I64), wr("z", DType::F32)],
        &["n"],
        dim(0),
        vec![
            store(0, iv(0), VExpr::Index(add(mul(iv(0), c(3)), c(1)))),
            store(
                1,
                iv(0),
                bin(BinaryOp::Div, cast(DType::F32, VExpr::Index(iv(0))), f(2.0)),
            ),
        ],
    );
    let jit = compile(&k, JitOptions::default());
    let n = 9;
    let mut bufs = [Buf::I64(vec![0; n]), Buf::F32(vec![0.0; n])];
    call(&jit, 0, &mut bufs, &[n as i64], 0, n as i64);
    assert_eq!(bufs[0], Buf::I64((0..n as i64).map(|i| 3 * i + 1).collect()));
    assert_eq!(bufs[1], Buf::F32((0..n).map(|i| i as f32 / 2.0).collect()));
}

#[test]
fn transpose_with_div_rem_index_math() {
    // x: [R, C], y: [C, R]; flat output index p = c*R + r, so r = p % R, c = p / R.
    let flat = |rr: IExpr, cc: IExpr| {
        kernel(
            "transpose_flat",
            vec![rd("x", DType::F32), wr("y", DType::F32)],
            &["R", "C"],
            mul(dim(0), dim(1)),
            vec![store(
                1,
                iv(0),
                ld(0, add(mul(irem(iv(0), rr.clone()), cc), idiv(iv(0), rr))),
            )],
        )
    };
    // Nested: parallel over c, inner loop over r; the load moves by C per step (not vectorized).
    let nested = kernel(
        "transpose_nested",
        vec![rd("x", DType::F32), wr("y", DType::F32)],
        &["R", "C"],
        dim(1),
        vec![lp(
            1,
            dim(0),
            true,
            vec![store(
                1,
                add(mul(iv(0), dim(0)), iv(1)),
                ld(0, add(mul(iv(1), dim(1)), iv(0))),
            )],
        )],
    );
    for (rows, cols) in [(3usize, 5usize), (1, 7), (8, 8), (17, 4)] {
        let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let mut want = vec![0f32; rows * cols];
        for r in 0..rows {
            for cc in 0..cols {
                want[cc * rows + r] = x[r * cols + cc];
            }
        }
        let dims = [rows as i64, cols as i64];
        let kernels = [
            flat(dim(0), dim(1)),
            flat(c(rows as i64), c(cols as i64)), // constant divisors
            nested.clone(),
        ];
        let jit = JitModule::compile(&kernels).unwrap();
        assert_eq!(jit.vectorized_loops(2), 0);
        for (i, hi) in [(0, rows * cols), (1, rows * cols), (2, cols)] {
            let mut bufs = [Buf::F32(x.clone()), Buf::F32(vec![-1.0; rows * cols])];
            call(&jit, i, &mut bufs, &dims, 0, hi as i64);
            assert_eq!(bufs[1], Buf::F32(want.clone()), "{} {rows}x{cols}", jit.name(i));
        }
    }
}

#[test]
fn subranges_cover_exactly_their_indices() {
    let k = elementwise("twice", vec![rd("x", DType::F32), wr("y", DType::F32)], false, |i| {
        bin(BinaryOp::Mul, ld(0, i), f(2.0))
    });
    let jit = compile(&k, JitOptions::default());
    let n = 103;
    let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let mut bufs = [Buf::F32(x.clone()), Buf::F32(vec![-1.0; n])];
    // Uneven chunks, as an executor splitting over threads would; the last is empty.
    for (lo, hi) in [(0, 10), (10, 11), (11, 64), (64, 103), (103, 103), (50, 40)] {
        call(&jit, 0, &mut bufs, &[n as i64], lo, hi);
    }
    assert_eq!(bufs[1], Buf::F32(x.iter().map(|v| v * 2.0).collect()));

    // A middle range leaves the rest untouched.
    let mut bufs = [Buf::F32(x.clone()), Buf::F32(vec![-1.0; n])];
    call(&jit, 0, &mut bufs, &[n as i64], 20, 30);
    for (i, v) in bufs[1].f32().iter().enumerate() {
        let want = if (20..30).contains(&i) { 2.0 * i as f32 } else { -1.0 };
        assert_eq!(*v, want, "element {i}");
    }
}

#[test]
fn threads_share_one_module() {
    let k = kernel(
        "rows",
        vec![rd("x", DType::F32), wr("y", DType::F32)],
        &["rows", "n"],
        dim(0),
        vec![lp(
            1,
            dim(1),
            true,
            vec![store(
                1,
                add(mul(iv(0), dim(1)), iv(1)),
                un(UnaryOp::Sqrt, ld(0, add(mul(iv(0), dim(1)), iv(1)))),
            )],
        )],
    );
    let jit = compile(&k, JitOptions::default());
    let (rows, n) = (64usize, 37usize);
    let x: Vec<f32> = (0..rows * n).map(|i| i as f32).collect();
    let mut y = vec![0f32; rows * n];
    let xp = x.as_ptr() as usize;
    let yp = y.as_mut_ptr() as usize;
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let jit = &jit;
            s.spawn(move || {
                let ptrs = [xp as *mut u8, yp as *mut u8];
                // SAFETY: `x` and `y` outlive the scope and hold rows*n f32 each, every row the
                // kernel touches for rows 0..64; the four threads write disjoint row ranges of
                // `y` and only read `x`.
                unsafe { jit.call(0, &ptrs, &[rows as i64, n as i64], t * 16, t * 16 + 16) };
            });
        }
    });
    assert_f32s("threads", &y, &x.iter().map(|v| v.sqrt()).collect::<Vec<_>>(), same);
}

/// A body that uses every vectorizable construct: broadcast loads, lets, fma, NaN-ignoring
/// max/min, comparisons and masks, select, casts between f32 and bool, a uniform callout and a
/// uniform select.
fn rich_kernel(vector: bool) -> KernelFn {
    let at = add(mul(iv(0), dim(1)), iv(1));
    let x = || ld(0, add(mul(iv(0), dim(1)), iv(1)));
    let w = || ld(1, iv(1));
    let s = || ld(2, iv(0)); // per-row scalar: broadcast along the loop
    let body = vec![
        KStmt::Let {
            var: 20,
            dtype: DType::F32,
            value: bin(BinaryOp::Add, bin(BinaryOp::Mul, x(), w()), s()), // fma when fused
        },
        KStmt::Let {
            var: 21,
            dtype: DType::F32,
            value: un(UnaryOp::Exp, s()), // uniform callout
        },
        KStmt::Let {
            var: 22,
            dtype: DType::Bool,
            value: bin(
                BinaryOp::And,
                bin(BinaryOp::Gt, VExpr::Var(20), f(0.0)),
                un(UnaryOp::Not, bin(BinaryOp::Eq, x(), w())),
            ),
        },
        KStmt::Let {
            var: 23,
            dtype: DType::F32,
            value: sel(
                VExpr::Var(22),
                un(UnaryOp::Sqrt, VExpr::Var(20)),
                bin(BinaryOp::Min, un(UnaryOp::Abs, x()), VExpr::Var(21)),
            ),
        },
        store(
            3,
            at.clone(),
            bin(
                BinaryOp::Sub,
                bin(BinaryOp::Max, VExpr::Var(23), bin(BinaryOp::Div, w(), f(3.0))),
                bin(BinaryOp::Mul, cast(DType::F32, VExpr::Var(22)), un(UnaryOp::Neg, s())),
            ),
        ),
        store(
            4,
            at,
            sel(
                bin(BinaryOp::Lt, s(), f(0.5)),
                bin(BinaryOp::Sub, s(), bin(BinaryOp::Mul, x(), x())),
                cast(DType::F32, cast(DType::Bool, un(UnaryOp::Sign, x()))),
            ),
        ),
    ];
    kernel(
        "rich",
        vec![
            rd("x", DType::F32),
            rd("w", DType::F32),
            rd("s", DType::F32),
            wr("y", DType::F32),
            wr("z", DType::F32),
        ],
        &["rows", "n"],
        dim(0),
        vec![lp(1, dim(1), vector, body)],
    )
}

fn rich_inputs(rows: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let x = (0..rows * n)
        .map(|i| match i % 13 {
            3 => f32::NAN,
            7 => -0.0,
            _ => ((i as f32) * 0.61).sin() * 3.0,
        })
        .collect();
    let w = (0..n)
        .map(|j| {
            if j % 9 == 4 {
                f32::INFINITY
            } else {
                (j as f32 * 0.3).cos()
            }
        })
        .collect();
    let s = (0..rows).map(|r| r as f32 * 0.25 - 0.5).collect();
    (x, w, s)
}

fn run_rich(jit: &JitModule, rows: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
    let (x, w, s) = rich_inputs(rows, n);
    let mut bufs = [
        Buf::F32(x),
        Buf::F32(w),
        Buf::F32(s),
        Buf::F32(vec![0.0; rows * n]),
        Buf::F32(vec![0.0; rows * n]),
    ];
    call(jit, 0, &mut bufs, &[rows as i64, n as i64], 0, rows as i64);
    (bufs[3].f32().to_vec(), bufs[4].f32().to_vec())
}

#[test]
fn vectorized_and_scalar_loops_agree_bit_for_bit() {
    for fma in [false, true] {
        let opts = JitOptions { fma, vectorize: true };
        let vec_jit = compile(&rich_kernel(true), opts);
        let scalar_jit = compile(&rich_kernel(false), opts);
        assert_eq!(vec_jit.vectorized_loops(0), 1, "the rich body must vectorize");
        assert_eq!(scalar_jit.vectorized_loops(0), 0);
        for n in [1usize, 3, 4, 5, 7, 8, 9, 1023] {
            let rows = 5;
            let (vy, vz) = run_rich(&vec_jit, rows, n);
            let (sy, sz) = run_rich(&scalar_jit, rows, n);
            assert_f32s(&format!("y n={n} fma={fma}"), &vy, &sy, same);
            assert_f32s(&format!("z n={n} fma={fma}"), &vz, &sz, same);
        }
    }
}

#[test]
fn rich_kernel_matches_plain_rust() {
    // Without fusion, so plain Rust arithmetic is the reference.
    for vector in [false, true] {
        let jit = compile(&rich_kernel(vector), no_fma());
        for n in [1usize, 6, 1023] {
            let rows = 5;
            let (x, w, s) = rich_inputs(rows, n);
            let (got_y, got_z) = run_rich(&jit, rows, n);
            let (mut want_y, mut want_z) = (vec![0f32; rows * n], vec![0f32; rows * n]);
            for r in 0..rows {
                for j in 0..n {
                    let (xv, wv, sv) = (x[r * n + j], w[j], s[r]);
                    let v20 = xv * wv + sv;
                    let v21 = sv.exp();
                    let v22 = v20 > 0.0 && xv != wv;
                    let v23 = if v22 { v20.sqrt() } else { ref_max(xv.abs(), v21, false) };
                    let flag = if v22 { 1.0 } else { 0.0 };
                    want_y[r * n + j] = ref_max(v23, wv / 3.0, true) - flag * -sv;
                    let sign = ref_unary_f32(UnaryOp::Sign, xv);
                    want_z[r * n + j] = if sv < 0.5 {
                        sv - xv * xv
                    } else if sign != 0.0 {
                        1.0
                    } else {
                        0.0
                    };
                }
            }
            assert_f32s(&format!("y n={n} vector={vector}"), &got_y, &want_y, same_mod_zero_sign);
            assert_f32s(&format!("z n={n} vector={vector}"), &got_z, &want_z, same);
        }
    }
}

#[test]
fn fma_fuses_consistently() {
    // y[i] = x[i] * w[i] + b[i]: with fusion both paths give mul_add's single rounding.
    for vector in [false, true] {
        let k = elementwise(
            "fma",
            vec![
                rd("x", DType::F32),
                rd("w", DType::F32),
                rd("b", DType::F32),
                wr("y", DType::F32),
            ],
            vector,
            |i| {
                bin(
                    BinaryOp::Add,
                    bin(BinaryOp::Mul, ld(0, i.clone()), ld(1, i.clone())),
                    ld(2, i),
                )
            },
        );
        let n = 11;
        let x: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 1e-3 + 1.0 / 3.0).collect();
        let w: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 1e-4 - 1.0 / 7.0).collect();
        let b: Vec<f32> = x.iter().zip(&w).map(|(a, b)| -(a * b)).collect();
        for fused in [false, true] {
            let jit = compile(
                &k,
                JitOptions {
                    fma: fused,
                    vectorize: true,
                },
            );
            let mut bufs = [
                Buf::F32(x.clone()),
                Buf::F32(w.clone()),
                Buf::F32(b.clone()),
                Buf::F32(vec![0.0; n]),
            ];
            call(&jit, 0, &mut bufs, &[n as i64], 0, if vector { 1 } else { n as i64 });
            // Whether the host fuses is the JIT's choice (native FMA only); either answer is one
            // of the two exact references, and all lanes agree on which.
            let plain: Vec<f32> = (0..n).map(|i| x[i] * w[i] + b[i]).collect();
            let fused_ref: Vec<f32> = (0..n).map(|i| x[i].mul_add(w[i], b[i])).collect();
            let got = bufs[3].f32();
            if fused && got[1..] != plain[1..] {
                assert_f32s("fused", got, &fused_ref, same);
            } else {
                assert_f32s("unfused", got, &plain, same);
            }
        }
    }
}

#[test]
fn division_by_zero_and_negative_powers_give_zero() {
    for op in [BinaryOp::Div, BinaryOp::Rem, BinaryOp::Pow] {
        let k = elementwise(
            "z",
            vec![rd("a", DType::I32), rd("b", DType::I32), wr("y", DType::I32)],
            false,
            |i| bin(op, ld(0, i.clone()), ld(1, i)),
        );
        let jit = compile(&k, JitOptions::default());
        let mut bufs = [
            Buf::I32(vec![5, -5, 0]),
            Buf::I32(vec![if op == BinaryOp::Pow { -1 } else { 0 }; 3]),
            Buf::I32(vec![7; 3]),
        ];
        call(&jit, 0, &mut bufs, &[3], 0, 3);
        assert_eq!(bufs[2], Buf::I32(vec![0; 3]), "{op:?}");
    }
    // Index division by a zero dim is 0 as well (IExpr::eval's rule).
    let k = kernel(
        "idx",
        vec![wr("y", DType::I64)],
        &["n", "d"],
        dim(0),
        vec![store(
            0,
            iv(0),
            VExpr::Index(add(idiv(iv(0), dim(1)), irem(iv(0), dim(1)))),
        )],
    );
    let jit = compile(&k, JitOptions::default());
    let mut bufs = [Buf::I64(vec![9; 4])];
    call(&jit, 0, &mut bufs, &[4, 0], 0, 4);
    assert_eq!(bufs[0], Buf::I64(vec![0; 4]));
    call(&jit, 0, &mut bufs, &[4, 3], 0, 4);
    assert_eq!(bufs[0], Buf::I64(vec![0, 1, 2, 1]));
}

#[test]
fn unsupported_kernels_are_errors_not_panics() {
    let half = elementwise("h", vec![rd("x", DType::F16), wr("y", DType::F16)], false, |i| ld(0, i));
    let exp_int = elementwise("e", vec![rd("x", DType::I64), wr("y", DType::I64)], false, |i| {
        un(UnaryOp::Exp, ld(0, i))
    });
    let mixed = elementwise("m", vec![rd("x", DType::I64), wr("y", DType::F32)], false, |i| ld(0, i));
    let unbound = elementwise("u", vec![rd("x", DType::F32), wr("y", DType::F32)], false, |_| {
        VExpr::Var(99)
    });
    for k in [half, exp_int, mixed, unbound] {
        match JitModule::compile(std::slice::from_ref(&k)) {
            Err(JitError::Unsupported { kernel, .. }) => assert_eq!(kernel, k.name),
            other => panic!("{}: {:?}", k.name, other.err()),
        }
    }
}

#[test]
fn module_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<JitModule>();
}

/// Speed of SIMD against scalar code on a long add/mul chain (`cargo test --release --test jit
/// -- --ignored --nocapture simd_speed`). A measurement, not a test.
#[test]
#[ignore]
fn simd_speed() {
    let chain = |vector: bool| {
        let x = || ld(0, iv(1));
        let y = || ld(1, iv(1));
        let mut v = bin(BinaryOp::Add, x(), y());
        for k in 0..8 {
            v = bin(BinaryOp::Mul, v, f(0.999 + k as f32 * 1e-4));
            v = bin(BinaryOp::Add, v, if k % 2 == 0 { x() } else { y() });
        }
        kernel(
            "chain",
            vec![rd("x", DType::F32), rd("y", DType::F32), wr("z", DType::F32)],
            &["n"],
            c(1),
            vec![lp(1, dim(0), vector, vec![store(2, iv(1), v)])],
        )
    };
    let n = 1 << 20;
    let x: Vec<f32> = (0..n).map(|i| i as f32 * 1e-6).collect();
    let y: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 1e-6).collect();
    let mut results = Vec::new();
    for (label, vector, opts) in [
        ("scalar", false, JitOptions::default()),
        ("simd", true, JitOptions::default()),
        ("scalar no-fma", false, scalar_only()),
        ("simd no-fma", true, no_fma()),
    ] {
        let jit = compile(&chain(vector), opts);
        let mut bufs = [Buf::F32(x.clone()), Buf::F32(y.clone()), Buf::F32(vec![0.0; n])];
        call(&jit, 0, &mut bufs, &[n as i64], 0, 1);
        let reps = 50;
        let t = Instant::now();
        for _ in 0..reps {
            call(&jit, 0, &mut bufs, &[n as i64], 0, 1);
        }
        let per = t.elapsed().as_secs_f64() / f64::from(reps);
        println!(
            "{label:>14}: {:.3} ms per 2^20 elements ({:.2} ns/element)",
            per * 1e3,
            per * 1e9 / n as f64
        );
        results.push((label, per, bufs[2].f32().to_vec()));
    }
    assert_f32s("simd vs scalar", &results[1].2, &results[0].2, same);
    assert_f32s("simd vs scalar no-fma", &results[3].2, &results[2].2, same);
    println!(
        "speedup (fma): {:.2}x, (no fma): {:.2}x",
        results[0].1 / results[1].1,
        results[2].1 / results[3].1
    );
}

/// Callouts in vector loops (one call per lane) against the scalar loop (`cargo test --release
/// --test jit -- --ignored --nocapture callout_speed`). A measurement, not a test.
#[test]
#[ignore]
fn callout_speed() {
    for (label, op) in [
        ("silu", UnaryOp::Sigmoid),
        ("gelu-erf", UnaryOp::Erf),
        ("exp", UnaryOp::Exp),
        ("tanh", UnaryOp::Tanh),
    ] {
        let mk = |vector: bool| {
            let x = || ld(0, iv(1));
            let v = bin(
                BinaryOp::Mul,
                bin(BinaryOp::Mul, x(), un(op, bin(BinaryOp::Mul, x(), f(0.7)))),
                ld(1, iv(1)),
            );
            kernel(
                "k",
                vec![rd("x", DType::F32), rd("y", DType::F32), wr("z", DType::F32)],
                &["n"],
                c(1),
                vec![lp(1, dim(0), vector, vec![store(2, iv(1), v)])],
            )
        };
        let n = 1 << 18;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 1e-4).sin() * 3.0).collect();
        let y: Vec<f32> = (0..n).map(|i| 1.0 - i as f32 * 1e-6).collect();
        let mut res = Vec::new();
        for vector in [false, true] {
            let jit = compile(&mk(vector), JitOptions::default());
            let mut bufs = [Buf::F32(x.clone()), Buf::F32(y.clone()), Buf::F32(vec![0.0; n])];
            call(&jit, 0, &mut bufs, &[n as i64], 0, 1);
            let t = Instant::now();
            for _ in 0..10 {
                call(&jit, 0, &mut bufs, &[n as i64], 0, 1);
            }
            res.push((
                t.elapsed().as_secs_f64() / 10.0,
                bufs[2].f32().to_vec(),
                jit.vectorized_loops(0),
            ));
        }
        assert_f32s(label, &res[1].1, &res[0].1, same);
        println!(
            "{label}: scalar {:.2} ns/elem, lanewise simd {:.2} ns/elem (vectorized {})",
            res[0].0 * 1e9 / n as f64,
            res[1].0 * 1e9 / n as f64,
            res[1].2
        );
    }
}

fn acc_stmt(var: u32, init: f32) -> KStmt {
    KStmt::Acc {
        var,
        dtype: DType::F32,
        init: f(init),
    }
}

fn assign(var: u32, value: VExpr) -> KStmt {
    KStmt::Assign { var, value }
}

/// A row kernel with four reductions over the row (sum, sum of squares, max, min) whose results
/// are stored after the loop: out[row*4 + k].
fn reductions_kernel() -> KernelFn {
    let x = |v: u32| ld(1, add(mul(iv(0), dim(0)), iv(v)));
    let var = |v: u32| VExpr::Var(v);
    kernel(
        "reductions",
        vec![wr("out", DType::F32), rd("x", DType::F32)],
        &["L", "R"],
        dim(1),
        vec![
            acc_stmt(10, 0.5),
            acc_stmt(11, 0.0),
            acc_stmt(12, f32::NEG_INFINITY),
            acc_stmt(13, f32::INFINITY),
            lp(
                2,
                dim(0),
                false,
                vec![
                    KStmt::Let {
                        var: 20,
                        dtype: DType::F32,
                        value: x(2),
                    },
                    assign(10, bin(BinaryOp::Add, var(10), var(20))),
                    assign(11, bin(BinaryOp::Add, var(11), bin(BinaryOp::Mul, var(20), var(20)))),
                    assign(12, bin(BinaryOp::Max, var(12), var(20))),
                    assign(13, bin(BinaryOp::Min, x(2), var(13))),
                ],
            ),
            store(0, add(mul(iv(0), c(4)), c(0)), var(10)),
            store(0, add(mul(iv(0), c(4)), c(1)), var(11)),
            store(0, add(mul(iv(0), c(4)), c(2)), var(12)),
            store(0, add(mul(iv(0), c(4)), c(3)), var(13)),
        ],
    )
}

#[test]
fn vectorized_reductions_agree_with_scalar() {
    let k = reductions_kernel();
    let vec_jit = compile_tuned(&k, JitOptions::default(), JitTuning::default());
    let scalar_jit = compile(&k, JitOptions::default());
    assert_eq!(vec_jit.vectorized_loops(0), 1);
    assert_eq!(scalar_jit.vectorized_loops(0), 0);
    for len in [1usize, 3, 4, 5, 7, 8, 1023] {
        // Rows: plain values, with NaNs, with infinities, all NaN, with signed zeros.
        let rows = 5;
        let mut x = Vec::with_capacity(rows * len);
        for r in 0..rows {
            for i in 0..len {
                let v = ((i * 7 + r * 13) % 17) as f32 * 0.37 - 3.1 + i as f32 * 1e-3;
                x.push(match r {
                    1 if i % 3 == 1 => f32::NAN,
                    2 if i == len / 2 => f32::INFINITY,
                    2 if i == len - 1 => f32::NEG_INFINITY,
                    3 => f32::NAN,
                    4 => 0.0,
                    _ => v,
                });
            }
        }
        let run = |jit: &JitModule| {
            let mut bufs = [Buf::F32(vec![0.0; rows * 4]), Buf::F32(x.clone())];
            call(jit, 0, &mut bufs, &[len as i64, rows as i64], 0, rows as i64);
            bufs[0].f32().to_vec()
        };
        let (got, want) = (run(&vec_jit), run(&scalar_jit));
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            let ok = if j % 4 < 2 {
                same(*g, *w) || (g - w).abs() <= 1e-5 * w.abs().max(1.0)
            } else {
                same(*g, *w)
            };
            assert!(ok, "len {len}, row {}, reduction {}: got {g}, want {w}", j / 4, j % 4);
        }
    }
}

#[test]
fn polynomial_exp_is_accurate() {
    let mut xs: Vec<f32> = (-2_000_000..=2_000_000).map(|i| i as f32 * 5.5e-5).collect();
    xs.extend([
        0.0,
        -0.0,
        1e-30,
        -1e-30,
        88.72,
        88.7228,
        88.8,
        89.0,
        100.0,
        -87.3,
        -100.0,
        -103.9,
        -104.0,
        -200.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN,
    ]);
    for vector in [false, true] {
        let ys = map_f32_default(&xs, vector, |i| un(UnaryOp::Exp, ld(0, i)));
        let mut worst = 0f64;
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = f64::from(x).exp();
            if x.is_nan() {
                assert!(y.is_nan(), "exp({x}) = {y}");
            } else if want > f64::from(f32::MAX) {
                assert_eq!(y, f32::INFINITY, "exp({x})");
            } else if want < f64::from(f32::MIN_POSITIVE) {
                // Subnormal or zero: absolute error within one subnormal step or so.
                assert!(
                    (f64::from(y) - want).abs() <= 2.0 * 1.5e-45,
                    "exp({x}) = {y}, want {want}"
                );
            } else {
                let rel = (f64::from(y) - want).abs() / want;
                worst = worst.max(rel);
                assert!(
                    rel <= 3e-7,
                    "vector={vector}: exp({x}) = {y}, want {want} (rel {rel:e})"
                );
            }
        }
        eprintln!("vector={vector}: worst relative error of exp {worst:e}");
    }
}

/// `tanh`, `sigmoid` and `erf` as inline polynomials (the default tuning) against `f64`
/// references: relative error within `bound` where the result is a normal number (below that,
/// e.g. `sigmoid(-100)`, it may flush to 0), the right limits at ±inf, NaN kept, and the scalar
/// and vector code giving the same bits.
#[test]
fn polynomial_tanh_sigmoid_erf_are_accurate() {
    let mut xs: Vec<f32> = (-400_000..=400_000).map(|i| i as f32 * 5e-5).collect();
    xs.extend((-2000..=2000).map(|i| i as f32 * 0.05));
    // Every 61st float in [0.03, 9.5], where tanh's rational approximation is worst near 1.
    xs.extend((0x3d00_0000u32..0x4118_0000).step_by(61).map(f32::from_bits));
    xs.extend([
        1e-30,
        -1e-30,
        1e-8,
        -3e-6,
        0.624_999_9,
        0.625,
        0.899_999_9,
        0.9,
        -0.9,
        88.0,
        -88.0,
        -103.0,
        -120.0,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ]);
    type Reference = fn(f64) -> f64;
    let cases: [(UnaryOp, Reference, f64); 3] = [
        (UnaryOp::Tanh, f64::tanh, 3.5e-7),
        (UnaryOp::Sigmoid, |x| 1.0 / (1.0 + (-x).exp()), 3e-7),
        (UnaryOp::Erf, mlc_runtime::interp::erf, 3e-7),
    ];
    for (op, reference, bound) in cases {
        let mut by_mode = Vec::new();
        for vector in [false, true] {
            let ys = map_f32_default(&xs, vector, |i| un(op, ld(0, i)));
            let mut worst = 0f64;
            for (&x, &y) in xs.iter().zip(&ys) {
                let want = reference(f64::from(x));
                if x.is_nan() {
                    assert!(y.is_nan(), "{op:?}({x}) = {y}");
                } else if want.abs() < f64::from(f32::MIN_POSITIVE) {
                    assert!(
                        (f64::from(y) - want).abs() <= f64::from(f32::MIN_POSITIVE),
                        "{op:?}({x}) = {y}, want {want}"
                    );
                } else {
                    let rel = (f64::from(y) - want).abs() / want.abs();
                    worst = worst.max(rel);
                    assert!(
                        rel <= bound,
                        "vector={vector}: {op:?}({x}) = {y}, want {want} (rel {rel:e})"
                    );
                }
            }
            eprintln!("vector={vector}: worst relative error of {op:?} {worst:e}");
            by_mode.push(ys);
        }
        for ((x, a), b) in xs.iter().zip(&by_mode[0]).zip(&by_mode[1]) {
            let same = a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
            assert!(same, "{op:?}({x}): scalar code gives {a}, vector code {b}");
        }
    }
}

/// `max`/`min` against a constant (the NaN fix on the constant side is left out): NaN inputs
/// are still ignored, in scalar and vector code.
#[test]
fn max_and_min_with_a_constant_ignore_nan() {
    let xs = vec![
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -3.0,
        -0.5,
        0.0,
        0.25,
        0.5,
        7.0,
        f32::NAN,
        1e-30,
    ];
    for (op, c, is_max) in [(BinaryOp::Max, 0.5, true), (BinaryOp::Min, -0.5, false)] {
        for (const_left, vector) in [(false, false), (false, true), (true, false), (true, true)] {
            let ys = map_f32_default(&xs, vector, |i| {
                if const_left {
                    bin(op, f(c), ld(0, i))
                } else {
                    bin(op, ld(0, i), f(c))
                }
            });
            let want: Vec<f32> = xs
                .iter()
                .map(|&x| {
                    if const_left {
                        ref_max(c, x, is_max)
                    } else {
                        ref_max(x, c, is_max)
                    }
                })
                .collect();
            assert_f32s(
                &format!("{op:?} const_left={const_left} vector={vector}"),
                &ys,
                &want,
                same_mod_zero_sign,
            );
        }
    }
}

/// Softmax over rows of `L`, written as fusion writes it and then rewritten as kernel
/// generation does (`mlc_ir::kernel`): the sum loop stores `exp(x - max)` into the output and
/// the last loop multiplies it by the reciprocal of the sum. The vectorized reduction with a
/// store agrees with the scalar code and with softmax computed directly, at every tail length.
#[test]
fn softmax_with_the_stored_exp_term_matches_direct_softmax() {
    let x = |v: u32| ld(1, add(mul(iv(0), dim(0)), iv(v)));
    let var = |v: u32| VExpr::Var(v);
    let safe = || sel(bin(BinaryOp::Gt, var(3), f(f32::NEG_INFINITY)), var(3), f(0.0));
    let mut k = kernel(
        "softmax",
        vec![wr("y", DType::F32), rd("x", DType::F32)],
        &["L", "R"],
        dim(1),
        vec![
            acc_stmt(3, f32::NEG_INFINITY),
            lp(2, dim(0), false, vec![assign(3, bin(BinaryOp::Max, var(3), x(2)))]),
            acc_stmt(5, 0.0),
            lp(
                4,
                dim(0),
                false,
                vec![assign(
                    5,
                    bin(
                        BinaryOp::Add,
                        var(5),
                        un(UnaryOp::Exp, bin(BinaryOp::Sub, x(4), safe())),
                    ),
                )],
            ),
            lp(
                6,
                dim(0),
                true,
                vec![store(
                    0,
                    add(mul(iv(0), dim(0)), iv(6)),
                    bin(
                        BinaryOp::Div,
                        un(UnaryOp::Exp, bin(BinaryOp::Sub, x(6), safe())),
                        var(5),
                    ),
                )],
            ),
        ],
    );
    mlc_ir::kernel::reciprocal_of_invariant_divisors(&mut k);
    mlc_ir::kernel::hoist_invariants(&mut k);
    mlc_ir::kernel::reuse_reduction_terms(&mut k);
    let text = mlc_ir::print_kernel(&k);
    assert_eq!(text.matches("exp(").count(), 1, "{text}");
    let vec_jit = compile_tuned(&k, JitOptions::default(), JitTuning::default());
    let scalar_jit = compile(&k, scalar_only());
    assert_eq!(vec_jit.vectorized_loops(0), 3, "{text}");
    for len in [1usize, 3, 4, 5, 8, 9, 13, 1000] {
        let rows = 3;
        let xs: Vec<f32> = (0..rows * len)
            .map(|i| ((i * 37) % 23) as f32 * 0.41 - 4.0 + if i % len == 2 { 30.0 } else { 0.0 })
            .collect();
        let run = |jit: &JitModule| {
            let mut bufs = [Buf::F32(vec![0.0; rows * len]), Buf::F32(xs.clone())];
            call(jit, 0, &mut bufs, &[len as i64, rows as i64], 0, rows as i64);
            bufs[0].f32().to_vec()
        };
        let (vector, scalar) = (run(&vec_jit), run(&scalar_jit));
        for r in 0..rows {
            let row = &xs[r * len..(r + 1) * len];
            let m = row.iter().copied().fold(f64::NEG_INFINITY, |a, b| a.max(f64::from(b)));
            let sum: f64 = row.iter().map(|&v| (f64::from(v) - m).exp()).sum();
            for i in 0..len {
                let want = (f64::from(row[i]) - m).exp() / sum;
                for (what, got) in [("vector", vector[r * len + i]), ("scalar", scalar[r * len + i])] {
                    let err = (f64::from(got) - want).abs();
                    assert!(
                        err <= 1e-6 * want.max(1e-30) + 1e-12,
                        "{what}, len {len}, row {r}, element {i}: got {got}, want {want}"
                    );
                }
            }
        }
    }
}

/// A module of many kernels is compiled on several threads: every kernel keeps its index and
/// name, and computes its own function. A kernel the backend refuses fails the whole module
/// with its name, whichever thread compiled it.
#[test]
fn many_kernels_compile_in_parallel_shares_in_order() {
    let count = 21;
    let kernels: Vec<KernelFn> = (0..count)
        .map(|i| {
            elementwise(
                &format!("k{i}"),
                vec![rd("x", DType::F32), wr("y", DType::F32)],
                i % 2 == 0,
                |ix| bin(BinaryOp::Add, ld(0, ix), f(i as f32)),
            )
        })
        .collect();
    let jit = JitModule::compile(&kernels).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jit.len(), count);
    for i in 0..count {
        assert_eq!(jit.name(i), format!("k{i}"));
        assert_eq!(jit.find(&format!("k{i}")), Some(i));
        let mut bufs = [Buf::F32(vec![1.0, 2.0, 3.0, 4.0, 5.0]), Buf::F32(vec![0.0; 5])];
        let hi = if i % 2 == 0 { 1 } else { 5 };
        call(&jit, i, &mut bufs, &[5], 0, hi);
        let want: Vec<f32> = (1..=5).map(|x| x as f32 + i as f32).collect();
        assert_eq!(bufs[1].f32(), want.as_slice(), "kernel {i}");
    }
    // An integer store into an f32 buffer is refused. With two refused kernels, the error
    // names the first, whichever thread compiled it.
    let bad_kernel = |name: &str, value: i64| {
        elementwise(name, vec![rd("x", DType::F32), wr("y", DType::F32)], false, |_| {
            VExpr::Const(Scalar::I64(value))
        })
    };
    let mut bad = kernels;
    bad.insert(5, bad_kernel("bad", 1));
    bad.push(bad_kernel("worse", 2));
    for _ in 0..10 {
        let err = JitModule::compile(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("kernel `bad`"), "{err}");
    }
}

/// Kernels that differ only in their names and their buffers' and dims' names share one
/// compiled function, and each still computes into the buffers it is given. Constants that
/// compare equal as floats but differ in bits (`0.0` and `-0.0`) keep their own functions.
#[test]
fn identical_kernels_share_one_function() {
    let add_const = |name: &str, buf: &str, x: f32| {
        elementwise(name, vec![rd(buf, DType::F32), wr("y", DType::F32)], true, move |ix| {
            bin(BinaryOp::Mul, ld(0, ix), f(x))
        })
    };
    let kernels = vec![
        add_const("a", "x", 0.0),
        add_const("b", "x2", 0.0),
        add_const("c", "x", -0.0),
        add_const("d", "x", 2.0),
        add_const("e", "x3", 2.0),
        add_const("f", "x", f32::NAN),
        add_const("g", "x", f32::NAN),
    ];
    let jit = JitModule::compile(&kernels).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jit.len(), 7);
    assert_eq!(jit.functions(), 4);
    for (i, (name, x)) in [
        ("a", 0.0),
        ("b", 0.0),
        ("c", -0.0),
        ("d", 2.0),
        ("e", 2.0),
        ("f", f32::NAN),
        ("g", f32::NAN),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(jit.name(i), name);
        let xs = [1.5f32, -3.0, 0.25];
        let mut bufs = [Buf::F32(xs.to_vec()), Buf::F32(vec![7.0; 3])];
        call(&jit, i, &mut bufs, &[3], 0, 1);
        let want: Vec<f32> = xs.iter().map(|v| v * x).collect();
        assert_f32s(name, bufs[1].f32(), &want, same);
    }
}
