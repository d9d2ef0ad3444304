//! The row primitives on 8 lanes (`avx2` + `fma`), and `exp256`, Cephes' `expf` on 8 lanes.
//!
//! The `*_avx2` functions have `#[target_feature(enable = "avx2,fma")]`; they are reached only
//! through [`OPS`], which [`SoftmaxVariant::ops`](super::SoftmaxVariant::ops) (and the
//! attention kernel's AVX2 variant) hand out after checking that the CPU has those features.

use std::arch::x86_64::*;

use crate::x86::hsum;

use super::{EXP_POLY, ExpSum, LN2_HI, LN2_LO, MIN_NORMAL_ARG, RowOps};

pub(crate) static OPS: RowOps = RowOps { max, exp_sum, scale };

const LANES: usize = 8;

fn max(x: &[f32]) -> f32 {
    // SAFETY: AVX2 is present (see the module docs); the function only reads `x` through its
    // slice.
    unsafe { max_avx2(x) }
}

#[target_feature(enable = "avx2,fma")]
fn max_avx2(x: &[f32]) -> f32 {
    let mut chunks = x.chunks_exact(LANES);
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in &mut chunks {
        // SAFETY: `c` has LANES elements. `maxps` returns its second operand when either is
        // NaN, so a NaN element leaves `m` as it was.
        m = _mm256_max_ps(unsafe { _mm256_loadu_ps(c.as_ptr()) }, m);
    }
    chunks.remainder().iter().fold(hmax(m), |a, &b| a.max(b))
}

/// [`RowOps::exp_sum`](super::RowOps): `exp_sum_avx2` with or without the next row.
///
/// # Safety
/// AVX2 and FMA are present (see the module docs); the pointer contract of `RowOps::exp_sum`.
unsafe fn exp_sum(x: *const f32, out: *mut f32, n: usize, m: f32, next: *const f32) -> ExpSum {
    // SAFETY: the caller's contract.
    unsafe {
        if next.is_null() {
            exp_sum_avx2::<false>(x, out, n, m, next)
        } else {
            exp_sum_avx2::<true>(x, out, n, m, next)
        }
    }
}

/// `out[j] = exp(x[j] - m)` for `j < n`, returning the sum, and with `NEXT` the maximum of
/// `next[..n]` (NaN ignored), read in the same loop. `out` may be `x` (element `j` is read
/// before it is written).
///
/// # Safety
/// `x` and `out` are valid for `n` elements, and `out` does not overlap `x` except exactly;
/// with `NEXT`, `next` is valid for `n` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_sum_avx2<const NEXT: bool>(x: *const f32, out: *mut f32, n: usize, m: f32, next: *const f32) -> ExpSum {
    let mv = _mm256_set1_ps(m);
    let ninf = _mm256_set1_ps(f32::NEG_INFINITY);
    let (mut sum, mut nm) = (_mm256_setzero_ps(), ninf);
    let full = n / LANES * LANES;
    let mut j = 0;
    while j < full {
        // SAFETY: `j + LANES <= n`.
        unsafe {
            if NEXT {
                nm = _mm256_max_ps(_mm256_loadu_ps(next.add(j)), nm);
            }
            let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x.add(j)), mv));
            _mm256_storeu_ps(out.add(j), e);
            sum = _mm256_add_ps(sum, e);
        }
        j += LANES;
    }
    if full < n {
        // The tail through full vectors padded with -inf (whose exp is 0).
        let rest = n - full;
        let mut lanes = [f32::NEG_INFINITY; LANES];
        // SAFETY: `rest < LANES` elements from `full` on are in bounds, and `lanes` is local.
        unsafe {
            if NEXT {
                std::ptr::copy_nonoverlapping(next.add(full), lanes.as_mut_ptr(), rest);
                nm = _mm256_max_ps(_mm256_loadu_ps(lanes.as_ptr()), nm);
            }
            std::ptr::copy_nonoverlapping(x.add(full), lanes.as_mut_ptr(), rest);
            let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(lanes.as_ptr()), mv));
            _mm256_storeu_ps(lanes.as_mut_ptr(), e);
            sum = _mm256_add_ps(sum, e);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), out.add(full), rest);
        }
    }
    ExpSum {
        sum: hsum(sum),
        next_max: hmax(nm),
    }
}

/// The largest lane (NaN lanes ignored).
#[target_feature(enable = "avx2,fma")]
fn hmax(v: __m256) -> f32 {
    let mut lanes = [0.0f32; LANES];
    // SAFETY: `lanes` has LANES elements.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
    lanes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

/// `exp(x)` lane by lane for the arguments softmax has, `x <= 0` (an element minus the row
/// maximum): Cephes' `expf` (a degree-7 polynomial on `r = x - n ln 2`, by Estrin's scheme),
/// times `2^n` built in the exponent bits. `n` comes from the 1.5·2²³ magic-number trick (the
/// low bits of `x log2(e) + 1.5·2²³` hold `n`), which saves a rounding and a conversion over
/// `roundps` + `cvtps2dq`. Results below the normal range (`x < -87.3`, including `-inf`) are 0;
/// NaN stays NaN; `x > 0` is outside the contract (above 88.7 the bits are garbage).
#[target_feature(enable = "avx2,fma")]
fn exp256(x: __m256) -> __m256 {
    // No clamping: an `x` below the normal range gives garbage bits (or NaN for -inf) that the
    // flush at the end replaces with 0.
    let magic = _mm256_set1_ps(12_582_912.0); // 1.5 * 2^23
    let t = _mm256_fmadd_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E), magic);
    let n = _mm256_sub_ps(t, magic);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let r2 = _mm256_mul_ps(r, r);
    let c = |i: usize| _mm256_set1_ps(EXP_POLY[i]);
    let p01 = _mm256_fmadd_ps(c(0), r, c(1));
    let p23 = _mm256_fmadd_ps(c(2), r, c(3));
    let p45 = _mm256_fmadd_ps(c(4), r, c(5));
    let p = _mm256_fmadd_ps(_mm256_fmadd_ps(p01, r2, p23), r2, p45);
    let y = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    // The low bits of `t` are `n` (two's complement); shifted into the exponent field they
    // wrap the magic number's bits away.
    let pow2 = _mm256_add_epi32(
        _mm256_slli_epi32::<23>(_mm256_castps_si256(t)),
        _mm256_set1_epi32(127 << 23),
    );
    let e = _mm256_mul_ps(y, _mm256_castsi256_ps(pow2));
    // Below the normal range the result is 0; NaN compares unordered and is kept.
    _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(MIN_NORMAL_ARG)), e)
}

fn scale(x: &mut [f32], a: f32) {
    // SAFETY: AVX2 is present (see the module docs); the function only touches `x` through its
    // slice.
    unsafe { scale_avx2(x, a) }
}

#[target_feature(enable = "avx2,fma")]
fn scale_avx2(x: &mut [f32], a: f32) {
    let av = _mm256_set1_ps(a);
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        // SAFETY: `c` has LANES elements.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), av)) };
    }
    for y in chunks.into_remainder() {
        *y *= a;
    }
}
