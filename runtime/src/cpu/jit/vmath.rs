//! Inline math in Cranelift IR, generic over `F32` and `F32X4` (the same instructions per lane,
//! so scalar and vector code give the same bits).
//!
//! `exp` (with [`super::JitTuning::poly_exp`], the default): Cephes `expf`'s algorithm. `x` is
//! clamped to `[-104, 89]` (NaN stays NaN: Cranelift's `fmin`/`fmax` propagate it), so `-inf`
//! and underflow give 0 and overflow gives `inf`. `n = round(x·log2 e)` by the 1.5·2²³
//! magic-number trick (no rounding instruction needed), `r = x - n·ln 2` in two parts
//! (Cody–Waite), `e^r` by Cephes' degree-7 minimax polynomial on `|r| <= ln2/2`, and the result
//! scaled by `2^n` as two factors `2^(n>>1)·2^(n-(n>>1))` built in the exponent bits, so
//! subnormal results are rounded once and `n = 128` still overflows to `inf`. Measured maximum
//! relative error against `f64::exp`: under 2.5e-7 for normal results (see `runtime/tests/jit.rs`).

use cranelift_codegen::ir::types::{F32X4, I32, I32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};

use super::codegen::Gen;

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
        let x = self.b.ins().fmin(x, hi);
        let x = self.b.ins().fmax(x, lo);
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
        let coeffs = [
            1.987_569_1e-4_f32,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ];
        let mut y = self.fconst_as(vector, coeffs[0]);
        for &c in &coeffs[1..] {
            let c = self.fconst_as(vector, c);
            y = self.mul_add(y, r, c);
        }
        let z = self.b.ins().fmul(r, r);
        let y = self.mul_add(y, z, r);
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
}
