//! AVX2+FMA micro-kernels: a 6x16 register tile (12 accumulators of 8 lanes, reading half of a
//! 32-column panel), skinny tiles over up to two panels, dot-product kernels for a transposed `B`,
//! and the epilogue compiled for AVX2.
//!
//! Every function here has `#[target_feature(enable = "avx2,fma")]`; they are reached only
//! through [`ISA`], which [`KernelVariant::isa`](super::KernelVariant::isa) hands out after
//! checking that the CPU has those features.

use std::arch::x86_64::*;

use crate::x86::hsum;

use super::driver::{DArgs, DotFn, Isa, KArgs, KernelFn, RowArgs};
use super::epilogue::{self, RawEpi};
use super::{KernelVariant, NR};

const LANES: usize = 8;
const VPP: usize = NR / LANES; // vectors per panel

pub(crate) static ISA: Isa = Isa {
    variant: KernelVariant::Avx2Fma,
    lanes: LANES,
    mr: 6,
    nv: 2,
    kernel: kernel_for,
    kernel_da: kernel_da_for,
    // 6-row chunks run 6x16 tiles (12 accumulators, 8 loads per 12 FMAs); 12-row chunks ran
    // 12x8 tiles (13 loads per 12 FMAs, bound by loads). Measured on a Zen AVX2 machine, best of
    // 3: 16x1024x1024 37 -> 52 GFLOP/s with B [K, N], 75 -> 88 prepacked, Linear weights equal.
    skinny_cap: 6,
    skinny_nv,
    dot_cap: 2,
    dot_r,
    dot: dot_for,
    row: Some(row),
    epilogue: epilogue_rows,
};

fn skinny_nv(rows: usize) -> usize {
    match rows {
        1 => 8,
        2 => 4,
        _ => 2,
    }
}

fn dot_r(rows: usize) -> usize {
    if rows == 1 { 8 } else { 4 }
}

macro_rules! kernel_table {
    ($($m:literal x $v:literal),* $(,)?) => {
        fn kernel_for(rows: usize, nv: usize) -> KernelFn {
            match (rows, nv) {
                $(($m, $v) => kernel::<$m, $v, false>,)*
                _ => panic!("no avx2 kernel for a {rows}-row, {nv}-vector tile"),
            }
        }
    };
}

kernel_table!(
    1 x 2, 2 x 2, 3 x 2, 4 x 2, 5 x 2, 6 x 2,
    1 x 8, 1 x 4, 2 x 4,
);

/// The blocked path's kernels reading `A` in place (row-major, rows `lda` apart).
fn kernel_da_for(rows: usize) -> KernelFn {
    match rows {
        1 => kernel::<1, 2, true>,
        2 => kernel::<2, 2, true>,
        3 => kernel::<3, 2, true>,
        4 => kernel::<4, 2, true>,
        5 => kernel::<5, 2, true>,
        6 => kernel::<6, 2, true>,
        _ => panic!("no kernel for a {rows}-row tile"),
    }
}

macro_rules! dot_table {
    ($($m:literal x $r:literal),* $(,)?) => {
        fn dot_for(rows: usize, r: usize) -> DotFn {
            match (rows, r) {
                $(($m, $r) => dot::<$m, $r>,)*
                _ => panic!("no avx2 dot kernel for {rows} rows by {r} columns"),
            }
        }
    };
}

dot_table!(1 x 8, 2 x 4, 1 x 1, 2 x 1);

/// Lane mask with the first `n` (at most 8) lanes enabled.
#[target_feature(enable = "avx2,fma")]
fn lane_mask(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// `C[MR, n_valid] = alpha * A_panel @ B_group + beta * C` for a tile of `NV` vectors.
///
/// # Safety
///
/// The CPU must support avx2/fma. `p.a` holds `p.kc * MR` floats (`[kc][MR]`), or with `DA` is the first of `MR` rows of `p.kc` floats, `p.lda` apart; for `k < p.kc`
/// and `v < NV`, the 8 floats at `p.b + k * p.ks + (v / 4) * p.ps + (v % 4) * 8` are readable;
/// rows `i < MR` of `p.c` (stride `p.ldc`) have `p.n_valid <= 8 * NV` writable (and, if
/// `p.beta != 0`, initialised) floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel<const MR: usize, const NV: usize, const DA: bool>(p: &KArgs) {
    // SAFETY (whole body): every access is one the caller guarantees; tail vectors use
    // maskload/maskstore, which touch only the enabled lanes.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); NV]; MR];
        // Fetch the C tile while the products are computed (it is read or overwritten at the end).
        // (Prefetches never fault; `wrapping_add` keeps the address arithmetic defined.)
        for i in 0..MR {
            let crow = p.c.wrapping_add(i * p.ldc) as *const i8;
            for line in 0..(NV * LANES).div_ceil(16) {
                _mm_prefetch::<_MM_HINT_T0>(crow.wrapping_add(line * 64));
            }
        }
        let mut a = p.a;
        let mut b = p.b;
        for _ in 0..p.kc {
            let mut bv = [_mm256_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(b.add((v / VPP) * p.ps + (v % VPP) * LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add(if DA { i * p.lda } else { i }));
                for (r, x) in row.iter_mut().zip(bv.iter()) {
                    *r = _mm256_fmadd_ps(av, *x, *r);
                }
            }
            a = a.add(if DA { 1 } else { MR });
            // `wrapping_add`: after the last step `b` may point past the panel; it is never read
            // then, but `add` would make even forming that pointer undefined (found by Miri).
            b = b.wrapping_add(p.ks);
        }
        let alpha = _mm256_set1_ps(p.alpha);
        let beta = _mm256_set1_ps(p.beta);
        for (i, row) in acc.iter().enumerate() {
            let crow = p.c.add(i * p.ldc);
            for (v, r) in row.iter().enumerate() {
                let col = v * LANES;
                if col >= p.n_valid {
                    break;
                }
                let cp = crow.add(col);
                let rem = p.n_valid - col;
                let x = _mm256_mul_ps(*r, alpha);
                if rem >= LANES {
                    let x = if p.beta == 0.0 {
                        x
                    } else {
                        _mm256_fmadd_ps(_mm256_loadu_ps(cp), beta, x)
                    };
                    _mm256_storeu_ps(cp, x);
                } else {
                    let mask = lane_mask(rem);
                    let x = if p.beta == 0.0 {
                        x
                    } else {
                        _mm256_fmadd_ps(_mm256_maskload_ps(cp, mask), beta, x)
                    };
                    _mm256_maskstore_ps(cp, mask, x);
                }
            }
        }
    }
}

/// `C[i, r] = alpha * dot(A row i, W row r) + beta * C[i, r]` for `i < MR`, `r < R`.
///
/// # Safety
///
/// The CPU must support avx2/fma. Rows `i < MR` of `p.a` (stride `p.lda`) and rows `r < R` of
/// `p.w` (stride `p.ldw`) have `p.k` readable floats; `p.c` has `MR` rows (stride `p.ldc`) of `R`
/// writable (initialised if `p.beta != 0`) floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot<const MR: usize, const R: usize>(p: &DArgs) {
    // SAFETY (whole body): loads stay within the first `p.k` floats of each row (the tail uses
    // maskload, which touches only the enabled lanes); stores are the MR x R outputs.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); R]; MR];
        let mut kk = 0;
        while kk + LANES <= p.k {
            let mut wv = [_mm256_setzero_ps(); R];
            for (r, x) in wv.iter_mut().enumerate() {
                *x = _mm256_loadu_ps(p.w.add(r * p.ldw + kk));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_loadu_ps(p.a.add(i * p.lda + kk));
                for (s, x) in row.iter_mut().zip(wv.iter()) {
                    *s = _mm256_fmadd_ps(av, *x, *s);
                }
            }
            kk += LANES;
        }
        if kk < p.k {
            let mask = lane_mask(p.k - kk);
            let mut wv = [_mm256_setzero_ps(); R];
            for (r, x) in wv.iter_mut().enumerate() {
                *x = _mm256_maskload_ps(p.w.add(r * p.ldw + kk), mask);
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_maskload_ps(p.a.add(i * p.lda + kk), mask);
                for (s, x) in row.iter_mut().zip(wv.iter()) {
                    *s = _mm256_fmadd_ps(av, *x, *s);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (r, s) in row.iter().enumerate() {
                let cp = p.c.add(i * p.ldc + r);
                let x = hsum(*s) * p.alpha;
                *cp = if p.beta == 0.0 { x } else { x + p.beta * *cp };
            }
        }
    }
}

/// One output row over `kc` rows of a row-major `B`, all `n` columns: `B` is read as `kc`
/// sequential streams, 64 columns (8 accumulators) at a time.
///
/// # Safety
///
/// The CPU must support avx2/fma. `p.a` holds `p.kc` floats; rows `r < p.kc` of `p.b` (stride
/// `p.ldb`) have `p.n` readable floats; `p.c` has `p.n` writable (initialised if `p.beta != 0`)
/// floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn row(p: &RowArgs) {
    const W: usize = 8 * LANES;
    // SAFETY (whole body): B reads are `r * ldb + j + 8 v` with `j + 8 v + 8 <= n` (full
    // blocks) or masked to `j < n`; C accesses are the same columns of the output row.
    unsafe {
        let alpha = _mm256_set1_ps(p.alpha);
        let beta = _mm256_set1_ps(p.beta);
        let mut j = 0;
        while j + W <= p.n {
            let mut acc = [_mm256_setzero_ps(); 8];
            for r in 0..p.kc {
                let av = _mm256_set1_ps(*p.a.add(r));
                let bp = p.b.add(r * p.ldb + j);
                for (v, x) in acc.iter_mut().enumerate() {
                    *x = _mm256_fmadd_ps(av, _mm256_loadu_ps(bp.add(v * LANES)), *x);
                }
            }
            for (v, x) in acc.iter().enumerate() {
                let cp = p.c.add(j + v * LANES);
                let y = _mm256_mul_ps(*x, alpha);
                let y = if p.beta == 0.0 {
                    y
                } else {
                    _mm256_fmadd_ps(_mm256_loadu_ps(cp), beta, y)
                };
                _mm256_storeu_ps(cp, y);
            }
            j += W;
        }
        while j < p.n {
            let lanes = LANES.min(p.n - j);
            let mask = lane_mask(lanes);
            let mut acc = _mm256_setzero_ps();
            for r in 0..p.kc {
                let bv = _mm256_maskload_ps(p.b.add(r * p.ldb + j), mask);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(*p.a.add(r)), bv, acc);
            }
            let cp = p.c.add(j);
            let y = _mm256_mul_ps(acc, alpha);
            let y = if p.beta == 0.0 {
                y
            } else {
                _mm256_fmadd_ps(_mm256_maskload_ps(cp, mask), beta, y)
            };
            _mm256_maskstore_ps(cp, mask, y);
            j += lanes;
        }
    }
}

/// The epilogue, vectorised with AVX2.
///
/// # Safety
///
/// The CPU must support avx2/fma; otherwise as [`epilogue::apply_rows`].
#[target_feature(enable = "avx2,fma")]
unsafe fn epilogue_rows(e: &RawEpi, c: *mut f32, ldc: usize, row0: usize, rows: usize, col0: usize, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { epilogue::apply_rows(e, c, ldc, row0, rows, col0, len) }
}
