//! AVX-512 kernels for block-quantised weights (see [`quant`](super::quant)): each block of 32
//! values is widened into two 16-lane vectors of weights (`q * d`, or `q * d + m` in one fused
//! multiply-add) and multiplied with up to 8 rows of `A`; for few rows of `A`, several rows of
//! `W` at once, so the loads of `A` and the final sums are shared.
//!
//! Every function here has `#[target_feature(enable = "avx512f,avx2,fma")]`; they are reached
//! only through [`kernel_for`], which [`quant_kernels`](super::quant) hands out for
//! [`KernelVariant::Avx512`](super::KernelVariant::Avx512), whose [`isa`](super::KernelVariant)
//! checks the CPU first.

use std::arch::x86_64::*;

use super::quant::{QArgs, QBLOCK, QKernel, QuantFormat};

pub(super) fn kernel_for(format: QuantFormat, rows: usize, wide: bool) -> QKernel {
    macro_rules! table {
        ($($m:literal x $r:literal),*) => {
            match (format, rows, wide) {
                $((QuantFormat::Int8, $m, true) => (dot::<$m, $r, false>, $r),)*
                $((QuantFormat::Nibble, $m, true) => (dot::<$m, $r, true>, $r),)*
                (QuantFormat::Int8, 1, false) => (dot::<1, 1, false>, 1),
                (QuantFormat::Int8, 2, false) => (dot::<2, 1, false>, 1),
                (QuantFormat::Int8, 3, false) => (dot::<3, 1, false>, 1),
                (QuantFormat::Int8, 4, false) => (dot::<4, 1, false>, 1),
                (QuantFormat::Nibble, 1, false) => (dot::<1, 1, true>, 1),
                (QuantFormat::Nibble, 2, false) => (dot::<2, 1, true>, 1),
                (QuantFormat::Nibble, 3, false) => (dot::<3, 1, true>, 1),
                (QuantFormat::Nibble, 4, false) => (dot::<4, 1, true>, 1),
                (QuantFormat::Int8, 5..=8, false) | (QuantFormat::Nibble, 5..=8, false) => kernel_for(format, rows, true),
                _ => panic!("no avx512 quantised kernel for {rows} rows"),
            }
        };
    }
    // Accumulators: 2 * rows * R <= 16 of the 32 vector registers.
    table!(1 x 4, 2 x 4, 3 x 2, 4 x 2, 5 x 1, 6 x 1, 7 x 1, 8 x 1)
}

/// Block `b` of the `W` row whose scales, minimums and blocks start at the given pointers, as
/// two vectors of weights: values `0..16` and `16..32`.
///
/// # Safety
///
/// The CPU must support avx512f/fma; block `b` and its scale (and minimum) must be readable.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn weights<const NIBBLE: bool>(
    scales: *const f32,
    mins: *const f32,
    quants: *const u8,
    b: usize,
) -> [__m512; 2] {
    // SAFETY: block `b` (16 or 32 bytes), its scale and minimum.
    unsafe {
        let d = _mm512_set1_ps(*scales.add(b));
        if NIBBLE {
            let x = _mm_loadu_si128(quants.add(b * QBLOCK / 2) as *const __m128i);
            let m4 = _mm_set1_epi8(0x0F);
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(x, m4)));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16::<4>(x), m4)));
            let m = _mm512_set1_ps(*mins.add(b));
            [_mm512_fmadd_ps(lo, d, m), _mm512_fmadd_ps(hi, d, m)]
        } else {
            let q = quants.add(b * QBLOCK);
            let lo = _mm512_cvtepi8_epi32(_mm_loadu_si128(q as *const __m128i));
            let hi = _mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(16) as *const __m128i));
            [
                _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d),
                _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d),
            ]
        }
    }
}

/// `out[i * R + r] = sum over blocks of w[r] . a[i]` for `MR` rows of `A`, `R` rows of `W`.
///
/// # Safety
///
/// The CPU must support avx512f/avx2/fma; otherwise as [`QArgs`].
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dot<const MR: usize, const R: usize, const NIBBLE: bool>(p: &QArgs) {
    let qrow = p.nb * if NIBBLE { QBLOCK / 2 } else { QBLOCK };
    // SAFETY (whole body): block `b < nb` of rows `r < R` of W (scales and minimums `nb` apart,
    // blocks `qrow` bytes apart) and of rows `i < MR` of A (32 floats inside the row); `out`
    // holds MR * R floats.
    unsafe {
        let mut acc = [[[_mm512_setzero_ps(); 2]; R]; MR];
        for b in 0..p.nb {
            let w: [[__m512; 2]; R] = std::array::from_fn(|r| {
                weights::<NIBBLE>(p.scales.add(r * p.nb), p.mins.add(r * p.nb), p.quants.add(r * qrow), b)
            });
            for (i, row) in acc.iter_mut().enumerate() {
                let a = p.a.add(i * p.lda + b * QBLOCK);
                let (a0, a1) = (_mm512_loadu_ps(a), _mm512_loadu_ps(a.add(16)));
                for (s, wr) in row.iter_mut().zip(&w) {
                    s[0] = _mm512_fmadd_ps(wr[0], a0, s[0]);
                    s[1] = _mm512_fmadd_ps(wr[1], a1, s[1]);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (r, s) in row.iter().enumerate() {
                *p.out.add(i * R + r) = _mm512_reduce_add_ps(_mm512_add_ps(s[0], s[1]));
            }
        }
    }
}
