//! Inline math in Cranelift IR, generic over `F32` and `F32X4` (the same instructions per lane,
//! so scalar and vector code give the same bits).
//!
//! `exp` (with [`super::JitTuning::poly_math`], the default): Cephes `expf`'s algorithm. `x` is
//! clamped to `[-104, 89]` (NaN stays NaN: the clamp is a compare and a select that keeps `x`
//! when the compare is false, two instructions where Cranelift's NaN-aware `fmin`/`fmax` take
//! seven), so `-inf` and underflow give 0 and overflow gives `inf`. `n = round(x·log2 e)` by the 1.5·2²³
//! magic-number trick (no rounding instruction needed), `r = x - n·ln 2` in two parts
//! (Cody–Waite), `e^r` by Cephes' degree-7 minimax polynomial on `|r| <= ln2/2` (evaluated by
//! Estrin's scheme), and the result
//! scaled by `2^n` as two factors `2^(n>>1)·2^(n-(n>>1))` built in the exponent bits, so
//! subnormal results are rounded once and `n = 128` still overflows to `inf`. Measured maximum
//! relative error against `f64::exp`: under 2.5e-7 for normal results (see `runtime/tests/jit.rs`).
//!
//! The functions built on it (all four with [`super::JitTuning::poly_math`], and measured in
//! `runtime/tests/jit.rs`; a call per lane to the C library costs 20–250 ns, these a few):
//! - `sigmoid(x) = 1 / (1 + e^-x)`.
//! - `tanh`: one rational function, `x P(x^2) / Q(x^2)` with `P` and `Q` of degree 4, on `x`
//!   clamped to `[-9, 9]` (beyond 9, `tanh` rounds to ±1 in f32), then clamped to `[-1, 1]`.
//!   The coefficients are a Lawson-weighted least-squares fit of the relative error on `[0, 9]`
//!   (`scripts/fit_tanh.py`; 2e-8 before rounding). No `exp`, no branch to select: about 15
//!   instructions per four lanes where `1 - 2 / (e^(2|x|) + 1)` and a small-`x` polynomial took
//!   about 75. Measured maximum relative error 3.1e-7 (every float in `[0.03, 9.5]`).
//! - `erf`: `x · P(x^2)` (its Taylor series to degree 21, exact to f32 rounding) for
//!   `|x| < 0.9`, else `1 - erfc(|x|)` with Numerical Recipes' `erfcc` (`t e^(-x^2 + Q(t))`,
//!   `t = 1/(1 + |x|/2)`, fractional error of `erfc` below 1.2e-7) with the sign of `x`.
//!
//! Where a function has two branches (`erf`), both are computed and one is selected, so scalar and
//! vector code stay identical.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32X4, I32, I32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::codegen::Gen;

/// Numerator of `tanh(x) = x P(x^2) / Q(x^2)` on `[-9, 9]`, lowest degree first
/// (`scripts/fit_tanh.py`).
const TANH_P: [f32; 5] = [1.0, 0.133_810_49, 0.003_495_614, 2.060_943_6e-5, 1.335_501_8e-8];
/// Denominator of the same.
const TANH_Q: [f32; 5] = [1.0, 0.467_143_66, 0.025_877_085, 3.285_674e-4, 7.776_732e-7];

impl Gen<'_, '_> {
    /// `v` as an `F32` or `F32X4` constant matching `like`.
    fn fconst_as(&mut self, vector: bool, v: f32) -> Value {
        let s = self.fconst(v);
        if vector { self.b.ins().splat(F32X4, s) } else { s }
    }

    fn iconst_as(&mut self, vector: bool, v: i32) -> Value {
        let s = self.iconst(I32, i64::from(v));
        if vector { self.b.ins().splat(I32X4, s) } else { s }
    }

    /// `a*b + c`, fused where fusion is on.
    fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.feat.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    /// `e^x` of an `F32` or `F32X4` value (module docs).
    pub(super) fn poly_exp(&mut self, x: Value) -> Value {
        let vector = self.b.func.dfg.value_type(x).is_vector();
        let (fty, ity) = if vector {
            (F32X4, I32X4)
        } else {
            (cranelift_codegen::ir::types::F32, I32)
        };
        let hi = self.fconst_as(vector, 89.0);
        let lo = self.fconst_as(vector, -104.0);
        let x = self.clamp_keep_nan(vector, x, lo, hi);
        let log2e = self.fconst_as(vector, std::f32::consts::LOG2_E);
        let magic = self.fconst_as(vector, 12_582_912.0); // 1.5 * 2^23
        let t = self.mul_add(x, log2e, magic);
        let nf = self.b.ins().fsub(t, magic);
        let ti = self.b.ins().bitcast(ity, MemFlagsData::new(), t);
        let mi = self.b.ins().bitcast(ity, MemFlagsData::new(), magic);
        let n = self.b.ins().isub(ti, mi);
        // r = x - n*ln2, ln2 = C1 + C2 with C1 exact in 9 bits.
        let c1 = self.fconst_as(vector, -0.693_359_4);
        let c2 = self.fconst_as(vector, 2.121_944_4e-4);
        let r = self.mul_add(nf, c1, x);
        let r = self.mul_add(nf, c2, r);
        // q(r) = c0 + c1 r + ... + c5 r^5 by Estrin's scheme, (c0 + c1 r) + r^2 (c2 + c3 r) +
        // r^4 (c4 + c5 r): three levels of independent FMAs instead of Horner's chain of five,
        // a shorter dependency chain per element (measured: 64K elements in cache, 0.072 ms with
        // Horner, 0.068 ms with this).
        let c = [
            0.5_f32,
            1.666_666_5e-1,
            4.166_579_6e-2,
            8.333_452e-3,
            1.398_199_9e-3,
            1.987_569_1e-4,
        ];
        let mut pairs = [r; 3];
        for (k, pair) in pairs.iter_mut().enumerate() {
            let lo = self.fconst_as(vector, c[2 * k]);
            let hi = self.fconst_as(vector, c[2 * k + 1]);
            *pair = self.mul_add(hi, r, lo);
        }
        let z = self.b.ins().fmul(r, r);
        let z2 = self.b.ins().fmul(z, z);
        let q = self.mul_add(pairs[1], z, pairs[0]);
        let q = self.mul_add(pairs[2], z2, q);
        let y = self.mul_add(q, z, r);
        let one = self.fconst_as(vector, 1.0);
        let y = self.b.ins().fadd(y, one);
        // 2^n as 2^n1 * 2^n2.
        let sh1 = self.iconst(I32, 1);
        let sh23 = self.iconst(I32, 23);
        let bias = self.iconst_as(vector, 127);
        let n1 = self.b.ins().sshr(n, sh1);
        let n2 = self.b.ins().isub(n, n1);
        let e1 = self.b.ins().iadd(n1, bias);
        let e1 = self.b.ins().ishl(e1, sh23);
        let e2 = self.b.ins().iadd(n2, bias);
        let e2 = self.b.ins().ishl(e2, sh23);
        let s1 = self.b.ins().bitcast(fty, MemFlagsData::new(), e1);
        let s2 = self.b.ins().bitcast(fty, MemFlagsData::new(), e2);
        let y = self.b.ins().fmul(y, s1);
        self.b.ins().fmul(y, s2)
    }

    /// `x` clamped to `[lo, hi]`; NaN stays NaN (both compares are false for it).
    fn clamp_keep_nan(&mut self, vector: bool, x: Value, lo: Value, hi: Value) -> Value {
        let x = self.select_lt(vector, hi, x, hi, x);
        self.select_lt(vector, x, lo, lo, x)
    }

    /// `c[0] + x (c[1] + x (c[2] + ...))`.
    fn horner(&mut self, vector: bool, x: Value, c: &[f32]) -> Value {
        let mut y = self.fconst_as(vector, c[c.len() - 1]);
        for &k in c[..c.len() - 1].iter().rev() {
            let k = self.fconst_as(vector, k);
            y = self.mul_add(y, x, k);
        }
        y
    }

    /// `if a < b { x } else { y }` per lane (`false` for NaN).
    fn select_lt(&mut self, vector: bool, a: Value, b: Value, x: Value, y: Value) -> Value {
        let m = self.b.ins().fcmp(FloatCC::LessThan, a, b);
        if vector {
            let m = self.b.ins().bitcast(F32X4, MemFlagsData::new(), m);
            self.b.ins().bitselect(m, x, y)
        } else {
            self.b.ins().select(m, x, y)
        }
    }

    /// `mag` (not negative) with the sign bit of `x`, by bit operations (x86-64 Cranelift has no
    /// vector `fcopysign`).
    fn with_sign_of(&mut self, vector: bool, mag: Value, x: Value) -> Value {
        let (fty, ity) = if vector {
            (F32X4, I32X4)
        } else {
            (cranelift_codegen::ir::types::F32, I32)
        };
        let sign = self.iconst_as(vector, i32::MIN);
        let xi = self.b.ins().bitcast(ity, MemFlagsData::new(), x);
        let s = self.b.ins().band(xi, sign);
        let mi = self.b.ins().bitcast(ity, MemFlagsData::new(), mag);
        let r = self.b.ins().bor(mi, s);
        self.b.ins().bitcast(fty, MemFlagsData::new(), r)
    }

    fn is_vector(&self, x: Value) -> bool {
        self.b.func.dfg.value_type(x).is_vector()
    }

    /// `1 / (1 + e^-x)` of an `F32` or `F32X4` value.
    pub(super) fn poly_sigmoid(&mut self, x: Value) -> Value {
        let vector = self.is_vector(x);
        let nx = self.b.ins().fneg(x);
        let e = self.poly_exp(nx);
        let one = self.fconst_as(vector, 1.0);
        let d = self.b.ins().fadd(one, e);
        self.b.ins().fdiv(one, d)
    }

    /// `tanh` of an `F32` or `F32X4` value (module docs).
    pub(super) fn poly_tanh(&mut self, x: Value) -> Value {
        let vector = self.is_vector(x);
        let hi = self.fconst_as(vector, 9.0);
        let lo = self.fconst_as(vector, -9.0);
        let x = self.clamp_keep_nan(vector, x, lo, hi);
        let z = self.b.ins().fmul(x, x);
        let p = self.horner(vector, z, &TANH_P);
        let q = self.horner(vector, z, &TANH_Q);
        let xp = self.b.ins().fmul(x, p);
        let t = self.b.ins().fdiv(xp, q);
        // Rounding can put the quotient an ulp or two beyond ±1 near the clamp.
        let one = self.fconst_as(vector, 1.0);
        let minus_one = self.fconst_as(vector, -1.0);
        self.clamp_keep_nan(vector, t, minus_one, one)
    }

    /// `erf` of an `F32` or `F32X4` value (module docs).
    pub(super) fn poly_erf(&mut self, x: Value) -> Value {
        let vector = self.is_vector(x);
        let a = self.b.ins().fabs(x);
        // Small: x * sum_n (-1)^n z^n / (n! (2n + 1)) * 2/sqrt(pi), z = x^2.
        let z = self.b.ins().fmul(x, x);
        let mut taylor = [0f32; 11];
        let mut fact = 1f64;
        for (n, c) in taylor.iter_mut().enumerate() {
            if n > 0 {
                fact *= n as f64;
            }
            let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
            *c = (sign * std::f64::consts::FRAC_2_SQRT_PI / (fact * (2 * n + 1) as f64)) as f32;
        }
        let p = self.horner(vector, z, &taylor);
        let small = self.b.ins().fmul(x, p);
        // Large: 1 - t e^(-a^2 + Q(t)), t = 1 / (1 + a/2).
        let one = self.fconst_as(vector, 1.0);
        let half = self.fconst_as(vector, 0.5);
        let d = self.mul_add(a, half, one);
        let t = self.b.ins().fdiv(one, d);
        let q = self.horner(
            vector,
            t,
            &[
                -1.265_512_2,
                1.000_023_7,
                0.374_091_96,
                0.096_784_18,
                -0.186_288_06,
                0.278_868_07,
                -1.135_204,
                1.488_515_9,
                -0.822_152_23,
                0.170_872_77,
            ],
        );
        let nz = self.b.ins().fneg(z);
        let arg = self.b.ins().fadd(nz, q);
        let e = self.poly_exp(arg);
        let erfc = self.b.ins().fmul(t, e);
        let large = self.b.ins().fsub(one, erfc);
        let large = self.with_sign_of(vector, large, x);
        let limit = self.fconst_as(vector, 0.9);
        self.select_lt(vector, a, limit, small, large)
    }
}
