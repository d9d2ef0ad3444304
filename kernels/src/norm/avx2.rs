//! The layer-norm passes on 8 lanes (`avx2` + `fma`), two accumulators per reduction so the
//! loops are not bound by the latency of one add.
//!
//! The `*_avx2` functions have `#[target_feature(enable = "avx2,fma")]`; they are reached only
//! through [`OPS`], which [`super::ops`] hands out after checking that the CPU has them.

use std::arch::x86_64::*;

use crate::x86::hsum;

use super::{NormOps, NormRow};

pub(super) static OPS: NormOps = NormOps {
    sum,
    sq_dev_sum,
    normalize,
};

const LANES: usize = 8;

fn sum(x: &[f32]) -> f32 {
    // SAFETY: AVX2 is present (module docs); only `x`'s elements are read.
    unsafe { sum_avx2(x.as_ptr(), x.len()) }
}

/// # Safety
/// `x` is valid for `n` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn sum_avx2(x: *const f32, n: usize) -> f32 {
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut j = 0;
    // SAFETY (loads): `j + 2 * LANES <= n`.
    while j + 2 * LANES <= n {
        unsafe {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x.add(j)));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x.add(j + LANES)));
        }
        j += 2 * LANES;
    }
    let mut total = hsum(_mm256_add_ps(s0, s1));
    while j < n {
        // SAFETY: `j < n`.
        total += unsafe { *x.add(j) };
        j += 1;
    }
    total
}

fn sq_dev_sum(x: &[f32], mean: f32) -> f32 {
    // SAFETY: AVX2 and FMA are present (module docs); only `x`'s elements are read.
    unsafe { sq_dev_sum_avx2(x.as_ptr(), x.len(), mean) }
}

/// # Safety
/// `x` is valid for `n` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn sq_dev_sum_avx2(x: *const f32, n: usize, mean: f32) -> f32 {
    let mv = _mm256_set1_ps(mean);
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut j = 0;
    // SAFETY (loads): `j + 2 * LANES <= n`.
    while j + 2 * LANES <= n {
        unsafe {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(x.add(j)), mv);
            let d1 = _mm256_sub_ps(_mm256_loadu_ps(x.add(j + LANES)), mv);
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
        }
        j += 2 * LANES;
    }
    let mut total = hsum(_mm256_add_ps(s0, s1));
    while j < n {
        // SAFETY: `j < n`.
        let d = unsafe { *x.add(j) } - mean;
        total += d * d;
        j += 1;
    }
    total
}

/// [`NormOps::normalize`] with or without the next row.
///
/// # Safety
/// AVX2 and FMA are present; the pointer contract of `NormOps::normalize`.
unsafe fn normalize(r: &NormRow) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        if r.next.is_null() {
            normalize_avx2::<false>(r)
        } else {
            normalize_avx2::<true>(r)
        }
    }
}

/// `out[j] = (x[j] - mean) * rstd * weight[j] + bias[j]`, and with `NEXT` the sum of
/// `next[..n]` (as `sum_avx2` sums: the same lanes and order, so a row's sum does not depend on
/// whether it was the next row of another).
///
/// # Safety
/// The pointer contract of `NormOps::normalize`; with `NEXT`, `next` is valid for `n` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn normalize_avx2<const NEXT: bool>(r: &NormRow) -> f32 {
    let NormRow {
        x,
        out,
        n,
        stats,
        weight,
        bias,
        next,
    } = *r;
    let (mv, rv) = (_mm256_set1_ps(stats.mean), _mm256_set1_ps(stats.rstd));
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut j = 0;
    // SAFETY (loads and stores): `j + 2 * LANES <= n`.
    while j + 2 * LANES <= n {
        unsafe {
            if NEXT {
                s0 = _mm256_add_ps(s0, _mm256_loadu_ps(next.add(j)));
                s1 = _mm256_add_ps(s1, _mm256_loadu_ps(next.add(j + LANES)));
            }
            for k in [j, j + LANES] {
                let y = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.add(k)), mv), rv);
                let y = _mm256_fmadd_ps(y, _mm256_loadu_ps(weight.add(k)), _mm256_loadu_ps(bias.add(k)));
                _mm256_storeu_ps(out.add(k), y);
            }
        }
        j += 2 * LANES;
    }
    let mut total = if NEXT { hsum(_mm256_add_ps(s0, s1)) } else { 0.0 };
    while j < n {
        // SAFETY: `j < n`.
        unsafe {
            let y = (*x.add(j) - stats.mean) * stats.rstd;
            *out.add(j) = y.mul_add(*weight.add(j), *bias.add(j));
            if NEXT {
                total += *next.add(j);
            }
        }
        j += 1;
    }
    total
}
