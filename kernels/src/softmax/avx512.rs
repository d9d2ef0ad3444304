//! The row primitives on 16 lanes (`avx512f`): masked loads and stores for the tails, and an
//! `exp` that scales by `2^n` with `vscalefps` (overflow to `inf` and subnormal results rounded
//! once, with no flush).
//!
//! The `*_avx512` functions have `#[target_feature(enable = "avx512f,avx2,fma")]`; they are
//! reached only through [`OPS`], which [`SoftmaxVariant::ops`](super::SoftmaxVariant::ops)
//! hands out after checking that the CPU has those features.

use std::arch::x86_64::*;

use super::{EXP_POLY, ExpSum, LN2_HI, LN2_LO, RowOps};

pub(crate) static OPS: RowOps = RowOps { max, exp_sum, scale };

const LANES: usize = 16;

/// The mask of the first `n < LANES` lanes.
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

fn max(x: &[f32]) -> f32 {
    // SAFETY: AVX-512F is present (see the module docs); only `x`'s elements are read.
    unsafe { max_avx512(x.as_ptr(), x.len()) }
}

/// # Safety
/// `x` is valid for `n` reads.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn max_avx512(x: *const f32, n: usize) -> f32 {
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    // Two accumulators: `vmaxps` has a latency of a few cycles. A NaN element leaves an
    // accumulator as it was (`vmaxps` returns its second operand when either is NaN).
    let (mut m0, mut m1) = (ninf, ninf);
    let mut j = 0;
    // SAFETY (all loads): each covers elements below `n`; the tail's are masked.
    while j + 2 * LANES <= n {
        unsafe {
            m0 = _mm512_max_ps(_mm512_loadu_ps(x.add(j)), m0);
            m1 = _mm512_max_ps(_mm512_loadu_ps(x.add(j + LANES)), m1);
        }
        j += 2 * LANES;
    }
    while j < n {
        let k = if n - j >= LANES { 0xffff } else { tail_mask(n - j) };
        m0 = _mm512_max_ps(unsafe { _mm512_mask_loadu_ps(ninf, k, x.add(j)) }, m0);
        j += LANES;
    }
    _mm512_reduce_max_ps(_mm512_max_ps(m0, m1))
}

/// [`RowOps::exp_sum`](super::RowOps): `exp_sum_avx512` with or without the next row.
///
/// # Safety
/// AVX-512F is present (see the module docs); the pointer contract of `RowOps::exp_sum`.
unsafe fn exp_sum(x: *const f32, out: *mut f32, n: usize, m: f32, next: *const f32) -> ExpSum {
    // SAFETY: the caller's contract.
    unsafe {
        if next.is_null() {
            exp_sum_avx512::<false>(x, out, n, m, next)
        } else {
            exp_sum_avx512::<true>(x, out, n, m, next)
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
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn exp_sum_avx512<const NEXT: bool>(x: *const f32, out: *mut f32, n: usize, m: f32, next: *const f32) -> ExpSum {
    let mv = _mm512_set1_ps(m);
    let ninf = _mm512_set1_ps(f32::NEG_INFINITY);
    let (mut s0, mut s1, mut nm) = (_mm512_setzero_ps(), _mm512_setzero_ps(), ninf);
    let mut j = 0;
    // SAFETY (all loads and stores): each covers elements below `n`; the tail's are masked.
    while j + 2 * LANES <= n {
        unsafe {
            if NEXT {
                nm = _mm512_max_ps(_mm512_loadu_ps(next.add(j)), nm);
                nm = _mm512_max_ps(_mm512_loadu_ps(next.add(j + LANES)), nm);
            }
            let e0 = exp512(_mm512_sub_ps(_mm512_loadu_ps(x.add(j)), mv));
            let e1 = exp512(_mm512_sub_ps(_mm512_loadu_ps(x.add(j + LANES)), mv));
            _mm512_storeu_ps(out.add(j), e0);
            _mm512_storeu_ps(out.add(j + LANES), e1);
            s0 = _mm512_add_ps(s0, e0);
            s1 = _mm512_add_ps(s1, e1);
        }
        j += 2 * LANES;
    }
    while j < n {
        let k = if n - j >= LANES { 0xffff } else { tail_mask(n - j) };
        unsafe {
            if NEXT {
                nm = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, k, next.add(j)), nm);
            }
            // Masked-off lanes load 0 and are neither stored nor summed.
            let e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x.add(j)), mv));
            _mm512_mask_storeu_ps(out.add(j), k, e);
            s0 = _mm512_mask_add_ps(s0, k, s0, e);
        }
        j += LANES;
    }
    ExpSum {
        sum: _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)),
        next_max: _mm512_reduce_max_ps(nm),
    }
}

/// `exp(x)` lane by lane: Cephes' `expf` (a degree-7 polynomial on `r = x - n ln 2`), scaled
/// by `2^n` with `vscalefps`. `x` is clamped to `[-104, 89]` first (NaN passes), beyond which
/// the result rounds to 0 or overflows to `inf` anyway.
#[target_feature(enable = "avx512f,avx2,fma")]
fn exp512(x: __m512) -> __m512 {
    // `vmaxps`/`vminps` return the second operand for a NaN: `x` goes second so NaN passes.
    let xc = _mm512_min_ps(_mm512_set1_ps(89.0), _mm512_max_ps(_mm512_set1_ps(-104.0), x));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
        xc,
        _mm512_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    // Estrin's scheme: shorter dependency chains than Horner's for the same operations.
    let r2 = _mm512_mul_ps(r, r);
    let c = |i: usize| _mm512_set1_ps(EXP_POLY[i]);
    let p01 = _mm512_fmadd_ps(c(0), r, c(1));
    let p23 = _mm512_fmadd_ps(c(2), r, c(3));
    let p45 = _mm512_fmadd_ps(c(4), r, c(5));
    let p03 = _mm512_fmadd_ps(p01, r2, p23);
    let p = _mm512_fmadd_ps(p03, r2, p45);
    let y = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
    _mm512_scalef_ps(y, n)
}

fn scale(x: &mut [f32], a: f32) {
    // SAFETY: AVX-512F is present (see the module docs); only `x`'s elements are touched.
    unsafe { scale_avx512(x.as_mut_ptr(), x.len(), a) }
}

/// # Safety
/// `x` is valid for `n` reads and writes.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn scale_avx512(x: *mut f32, n: usize, a: f32) {
    let av = _mm512_set1_ps(a);
    let mut j = 0;
    // SAFETY (all loads and stores): each covers elements below `n`; the tail's are masked.
    while j + LANES <= n {
        unsafe { _mm512_storeu_ps(x.add(j), _mm512_mul_ps(_mm512_loadu_ps(x.add(j)), av)) };
        j += LANES;
    }
    if j < n {
        let k = tail_mask(n - j);
        unsafe { _mm512_mask_storeu_ps(x.add(j), k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x.add(j)), av)) };
    }
}
