//! AVX2+FMA kernels for block-quantised weights (see [`quant`](super::quant)): each block of 32
//! values is widened into four 8-lane vectors of weights (`q * d`, or `q * d + m` in one fused
//! multiply-add) and multiplied with up to 4 rows of `A`; for one row of `A`, two rows of `W` at
//! once.
//!
//! Every function here has `#[target_feature(enable = "avx2,fma")]`; they are reached only
//! through [`kernel_for`], which [`quant_kernels`](super::quant) hands out for
//! [`KernelVariant::Avx2Fma`](super::KernelVariant::Avx2Fma), whose [`isa`](super::KernelVariant)
//! checks the CPU first.

use std::arch::x86_64::*;

use super::quant::{QArgs, QBLOCK, QKernel, QuantFormat};

pub(super) fn kernel_for(format: QuantFormat, rows: usize, wide: bool) -> QKernel {
    let nibble = format == QuantFormat::Nibble;
    match (nibble, rows, wide) {
        (false, 1, true) => (dot::<1, 2, false>, 2),
        (true, 1, true) => (dot::<1, 2, true>, 2),
        (false, 1, _) => (dot::<1, 1, false>, 1),
        (false, 2, _) => (dot::<2, 1, false>, 1),
        (false, 3, _) => (dot::<3, 1, false>, 1),
        (false, 4, _) => (dot::<4, 1, false>, 1),
        (true, 1, _) => (dot::<1, 1, true>, 1),
        (true, 2, _) => (dot::<2, 1, true>, 1),
        (true, 3, _) => (dot::<3, 1, true>, 1),
        (true, 4, _) => (dot::<4, 1, true>, 1),
        _ => panic!("no avx2 quantised kernel for {rows} rows"),
    }
}

/// Block `b` of the `W` row whose scales, minimums and blocks start at the given pointers, as
/// four vectors of weights: values `8 v .. 8 v + 8` in vector `v`.
///
/// # Safety
///
/// The CPU must support avx2/fma; block `b` and its scale (and minimum) must be readable.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn weights<const NIBBLE: bool>(
    scales: *const f32,
    mins: *const f32,
    quants: *const u8,
    b: usize,
) -> [__m256; 4] {
    // SAFETY: block `b` (16 or 32 bytes), its scale and minimum.
    unsafe {
        let d = _mm256_set1_ps(*scales.add(b));
        if NIBBLE {
            let x = _mm_loadu_si128(quants.add(b * QBLOCK / 2) as *const __m128i);
            let m4 = _mm_set1_epi8(0x0F);
            let lo = _mm_and_si128(x, m4);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(x), m4);
            let m = _mm256_set1_ps(*mins.add(b));
            [lo, _mm_srli_si128::<8>(lo), hi, _mm_srli_si128::<8>(hi)]
                .map(|q| _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q)), d, m))
        } else {
            let q = quants.add(b * QBLOCK);
            std::array::from_fn(|v| {
                let x = _mm256_cvtepi8_epi32(_mm_loadl_epi64(q.add(8 * v) as *const __m128i));
                _mm256_mul_ps(_mm256_cvtepi32_ps(x), d)
            })
        }
    }
}

/// `out[i * R + r] = sum over blocks of w[r] . a[i]` for `MR` rows of `A`, `R` rows of `W`.
///
/// # Safety
///
/// The CPU must support avx2/fma; otherwise as [`QArgs`].
#[target_feature(enable = "avx2,fma")]
unsafe fn dot<const MR: usize, const R: usize, const NIBBLE: bool>(p: &QArgs) {
    let qrow = p.nb * if NIBBLE { QBLOCK / 2 } else { QBLOCK };
    // SAFETY (whole body): block `b < nb` of rows `r < R` of W (scales and minimums `nb` apart,
    // blocks `qrow` bytes apart) and of rows `i < MR` of A (32 floats inside the row); `out`
    // holds MR * R floats.
    unsafe {
        let mut acc = [[[_mm256_setzero_ps(); 2]; R]; MR];
        for b in 0..p.nb {
            let w: [[__m256; 4]; R] = std::array::from_fn(|r| {
                weights::<NIBBLE>(p.scales.add(r * p.nb), p.mins.add(r * p.nb), p.quants.add(r * qrow), b)
            });
            for (i, row) in acc.iter_mut().enumerate() {
                let a = p.a.add(i * p.lda + b * QBLOCK);
                for (s, wr) in row.iter_mut().zip(&w) {
                    s[0] = _mm256_fmadd_ps(wr[0], _mm256_loadu_ps(a), s[0]);
                    s[1] = _mm256_fmadd_ps(wr[1], _mm256_loadu_ps(a.add(8)), s[1]);
                    s[0] = _mm256_fmadd_ps(wr[2], _mm256_loadu_ps(a.add(16)), s[0]);
                    s[1] = _mm256_fmadd_ps(wr[3], _mm256_loadu_ps(a.add(24)), s[1]);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (r, s) in row.iter().enumerate() {
                let v = _mm256_add_ps(s[0], s[1]);
                let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
                let x = _mm_add_ss(x, _mm_movehdup_ps(x));
                *p.out.add(i * R + r) = _mm_cvtss_f32(x);
            }
        }
    }
}
