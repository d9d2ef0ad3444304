//! Portable micro-kernels in plain Rust, written as fixed-size array arithmetic that the compiler
//! auto-vectorises for whatever the target has (SSE2 on baseline x86-64, NEON on aarch64): a 4x16
//! tile, dot-product kernels for a transposed `B`, and the epilogue. The fallback on x86 CPUs
//! without AVX2/FMA and the only variant elsewhere.

use super::driver::{DArgs, DotFn, Isa, KArgs, KernelFn, RowArgs};
use super::epilogue::{self, RawEpi};
use super::{KernelVariant, NR};

const LANES: usize = 8;
const VPP: usize = NR / LANES; // vectors per panel

type V = [f32; LANES];

pub(crate) static ISA: Isa = Isa {
    variant: KernelVariant::Portable,
    lanes: LANES,
    mr: 4,
    nv: 2,
    kernel: kernel_for,
    kernel_da: kernel_da_for,
    skinny_cap: 4,
    skinny_nv,
    dot_cap: 2,
    dot_r,
    dot: dot_for,
    row: Some(row),
    epilogue: epilogue_rows,
};

fn skinny_nv(_rows: usize) -> usize {
    2
}

fn dot_r(rows: usize) -> usize {
    if rows == 1 { 4 } else { 2 }
}

fn kernel_for(rows: usize, nv: usize) -> KernelFn {
    match (rows, nv) {
        (1, 2) => kernel::<1, 2, false>,
        (2, 2) => kernel::<2, 2, false>,
        (3, 2) => kernel::<3, 2, false>,
        (4, 2) => kernel::<4, 2, false>,
        _ => panic!("no portable kernel for a {rows}-row, {nv}-vector tile"),
    }
}

fn kernel_da_for(rows: usize) -> KernelFn {
    match rows {
        1 => kernel::<1, 2, true>,
        2 => kernel::<2, 2, true>,
        3 => kernel::<3, 2, true>,
        4 => kernel::<4, 2, true>,
        _ => panic!("no portable kernel for a {rows}-row tile"),
    }
}

fn dot_for(rows: usize, r: usize) -> DotFn {
    match (rows, r) {
        (1, 4) => dot::<1, 4>,
        (2, 2) => dot::<2, 2>,
        (1, 1) => dot::<1, 1>,
        (2, 1) => dot::<2, 1>,
        _ => panic!("no portable dot kernel for {rows} rows by {r} columns"),
    }
}

/// `C[MR, n_valid] = alpha * A_panel @ B_group + beta * C` for a tile of `NV` vectors of 8.
///
/// # Safety
///
/// `p.a` holds `p.kc * MR` floats (`[kc][MR]`), or with `DA` is the first of `MR` rows of `p.kc` floats, `p.lda` apart; for `k < p.kc` and `v < NV`, the 8 floats at
/// `p.b + k * p.ks + (v / 4) * p.ps + (v % 4) * 8` are readable; rows `i < MR` of `p.c` (stride
/// `p.ldc`) have `p.n_valid <= 8 * NV` writable (and, if `p.beta != 0`, initialised) floats.
unsafe fn kernel<const MR: usize, const NV: usize, const DA: bool>(p: &KArgs) {
    let mut acc = [[[0.0f32; LANES]; NV]; MR];
    let mut a = p.a;
    let mut b = p.b;
    for _ in 0..p.kc {
        let mut bv = [[0.0f32; LANES]; NV];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: one of the 8-float groups the caller guarantees readable.
            *x = unsafe { *(b.add((v / VPP) * p.ps + (v % VPP) * LANES) as *const V) };
        }
        for (i, row) in acc.iter_mut().enumerate() {
            // SAFETY: `i < MR`, within the `[kc][MR]` panel.
            let av = unsafe { *a.add(if DA { i * p.lda } else { i }) };
            for (r, x) in row.iter_mut().zip(bv.iter()) {
                for (s, y) in r.iter_mut().zip(x.iter()) {
                    *s += av * y;
                }
            }
        }
        // SAFETY: advancing within (or one past) the panels.
        unsafe {
            a = a.add(if DA { 1 } else { MR });
            // `wrapping_add`: after the last step `b` may point past the panel; it is never read
            // then, but `add` would make even forming that pointer undefined (found by Miri).
            b = b.wrapping_add(p.ks);
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, x) in row.iter().flatten().take(p.n_valid).enumerate() {
            // SAFETY: row `i < MR`, column `j < n_valid`: a writable output.
            unsafe {
                let cp = p.c.add(i * p.ldc + j);
                *cp = if p.beta == 0.0 {
                    x * p.alpha
                } else {
                    x * p.alpha + p.beta * *cp
                };
            }
        }
    }
}

/// `C[i, r] = alpha * dot(A row i, W row r) + beta * C[i, r]` for `i < MR`, `r < R`.
///
/// # Safety
///
/// Rows `i < MR` of `p.a` (stride `p.lda`) and rows `r < R` of `p.w` (stride `p.ldw`) have `p.k`
/// readable floats; `p.c` has `MR` rows (stride `p.ldc`) of `R` writable (initialised if
/// `p.beta != 0`) floats.
unsafe fn dot<const MR: usize, const R: usize>(p: &DArgs) {
    // SAFETY: the rows are `p.k` readable floats by the caller's contract.
    let arows: [&[f32]; MR] = std::array::from_fn(|i| unsafe { std::slice::from_raw_parts(p.a.add(i * p.lda), p.k) });
    // SAFETY: as above, for the rows of W.
    let wrows: [&[f32]; R] = std::array::from_fn(|r| unsafe { std::slice::from_raw_parts(p.w.add(r * p.ldw), p.k) });
    let mut acc = [[[0.0f32; LANES]; R]; MR];
    let full = p.k / LANES * LANES;
    let mut kk = 0;
    while kk < full {
        for (i, row) in acc.iter_mut().enumerate() {
            let av = &arows[i][kk..kk + LANES];
            for (r, s) in row.iter_mut().enumerate() {
                let wv = &wrows[r][kk..kk + LANES];
                for ((s, x), y) in s.iter_mut().zip(av).zip(wv) {
                    *s += x * y;
                }
            }
        }
        kk += LANES;
    }
    for (i, row) in acc.iter().enumerate() {
        for (r, s) in row.iter().enumerate() {
            let mut x: f32 = s.iter().sum();
            for q in full..p.k {
                x += arows[i][q] * wrows[r][q];
            }
            let x = x * p.alpha;
            // SAFETY: output `(i, r)` is writable by the caller's contract.
            unsafe {
                let cp = p.c.add(i * p.ldc + r);
                *cp = if p.beta == 0.0 { x } else { x + p.beta * *cp };
            }
        }
    }
}

/// One output row over `kc` rows of a row-major `B`, all `n` columns, 64 columns at a time.
///
/// # Safety
///
/// `p.a` holds `p.kc` floats; rows `r < p.kc` of `p.b` (stride `p.ldb`) have `p.n` readable
/// floats; `p.c` has `p.n` writable (initialised if `p.beta != 0`) floats.
unsafe fn row(p: &RowArgs) {
    const W: usize = 64;
    // SAFETY: the ranges the caller guarantees.
    let (a, c) = unsafe {
        (
            std::slice::from_raw_parts(p.a, p.kc),
            std::slice::from_raw_parts_mut(p.c, p.n),
        )
    };
    let mut j0 = 0;
    while j0 < p.n {
        let w = W.min(p.n - j0);
        let mut acc = [0.0f32; W];
        for (r, av) in a.iter().enumerate() {
            // SAFETY: row `r`, columns j0..j0+w of B.
            let brow = unsafe { std::slice::from_raw_parts(p.b.add(r * p.ldb + j0), w) };
            for (x, y) in acc.iter_mut().zip(brow) {
                *x += av * y;
            }
        }
        for (cj, x) in c[j0..j0 + w].iter_mut().zip(acc) {
            *cj = if p.beta == 0.0 {
                x * p.alpha
            } else {
                x * p.alpha + p.beta * *cj
            };
        }
        j0 += w;
    }
}

/// The epilogue, auto-vectorised for the baseline target.
///
/// # Safety
///
/// As [`epilogue::apply_rows`].
unsafe fn epilogue_rows(e: &RawEpi, c: *mut f32, ldc: usize, row0: usize, rows: usize, col0: usize, len: usize) {
    // SAFETY: forwarded contract.
    unsafe { epilogue::apply_rows(e, c, ldc, row0, rows, col0, len) }
}
