//! Softmax over the rows of a row-major `f32` matrix, and the row primitives it is made of
//! (the attention kernel's online softmax uses the same ones).
//!
//! `softmax_rows` computes, for each row `x` of `row_len` elements, with the semantics of
//! `std.math.softmax` as the Graph IR writes it:
//!
//! ```text
//! m = max(x)                  // NaN ignored; -inf for a row of -inf
//! m = m > -inf ? m : 0        // a row of -inf gives zeros, not NaN
//! e = exp(x - m); s = sum(e)
//! out = e * (1 / (s > 0 ? s : 1))
//! ```
//!
//! Three passes over each row: the maximum, the exponentials and their sum, the scaling. The
//! maximum of row `r + 1` is taken in the same loop as the exponentials of row `r`, so the
//! row's trip from memory overlaps arithmetic, and the other passes find their row in the L1
//! cache for the usual row lengths. The passes run on 16 lanes (AVX-512), 8 (AVX2+FMA) or
//! plain Rust, chosen at run time ([`SoftmaxVariant::detect`]). The vector `exp`s are Cephes'
//! `expf` polynomial (about 2 ulp) for the arguments softmax has (`x - max <= 0`); results
//! below `e^-87.3` are 0 on AVX2 and subnormal (rounded once) on AVX-512, a difference under
//! 1.2e-38 after normalisation. Rows are independent, so splitting them over threads gives
//! the same bits as one call.
//!
//! ```
//! use mlc_kernels::softmax::softmax_rows;
//!
//! let x = [1.0f32, 2.0, 3.0, 0.0, 0.0, f32::NEG_INFINITY];
//! let mut out = [0.0f32; 6];
//! softmax_rows(&x, &mut out, 3);
//! assert!((out[2] - 0.665_240_9).abs() < 1e-6);
//! assert_eq!(out[3..], [0.5, 0.5, 0.0]);
//! ```

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod portable;

use std::sync::OnceLock;

/// Cephes' `expf` polynomial: `e^r ≈ 1 + r + r² P(r)` on `|r| <= ln2/2`, `P`'s coefficients
/// highest degree first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];
/// `ln 2` in two parts for the range reduction `r = x - n ln2` (Cody–Waite): the first has few
/// enough bits that `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// The smallest argument whose `exp` is a normal float (`ln 2^-126`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MIN_NORMAL_ARG: f32 = -87.336_55;

/// The row primitives for one instruction set.
pub(crate) struct RowOps {
    /// The largest element, NaN ignored; -inf for an empty row or a row of -inf and NaN.
    pub max: fn(&[f32]) -> f32,
    /// `exp_sum(x, out, n, m, next)`: `out[j] = exp(x[j] - m)` for `j < n`, returning the sum
    /// and, unless `next` is null, the maximum of `next[..n]` (read in the same loop). Reached
    /// through [`RowOps::exp_sum`], which checks the lengths, and the softmax driver `rows`.
    ///
    /// # Safety
    /// `x`, `out` and a non-null `next` are valid for `n` elements; `out` does not overlap
    /// `x` except exactly (element `j` is read before it is written) and does not overlap
    /// `next`.
    exp_sum: unsafe fn(*const f32, *mut f32, usize, f32, *const f32) -> ExpSum,
    /// `x[j] *= a`.
    pub scale: fn(&mut [f32], f32),
}

impl RowOps {
    /// `x[j] = exp(x[j] - m)`, returning the sum of the new values and the maximum of `next`
    /// (as `max`). `m` is at least every element (the row maximum), so the arguments are at
    /// most 0 (or NaN); where the result would be subnormal (below `e^-87.3`) the AVX2 variant
    /// gives 0. `next` is empty or as long as `x`: reading the next row in the same loop
    /// overlaps its trip from memory with this row's arithmetic.
    pub fn exp_sum(&self, x: &mut [f32], m: f32, next: &[f32]) -> ExpSum {
        let p = x.as_mut_ptr();
        // SAFETY: both pointers cover `x`, which nothing else touches meanwhile; `next` is a
        // different slice, checked by `next_ptr`.
        unsafe { (self.exp_sum)(p, p, x.len(), m, next_ptr(next, x.len())) }
    }
}

/// `next`'s address, or null when it is empty.
///
/// # Panics
/// If `next` is neither empty nor `n` long.
fn next_ptr(next: &[f32], n: usize) -> *const f32 {
    if next.is_empty() {
        return std::ptr::null();
    }
    assert_eq!(next.len(), n, "exp_sum: the next row's length differs");
    next.as_ptr()
}

/// What [`RowOps::exp_sum`] returns.
pub(crate) struct ExpSum {
    /// The sum of the exponentials.
    pub sum: f32,
    /// The maximum of the next row (-inf for none).
    pub next_max: f32,
}

/// Which row primitives a softmax uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxVariant {
    /// 512-bit (`avx512f`, with `avx2` and `fma`).
    Avx512,
    /// 256-bit (`avx2` + `fma`).
    Avx2Fma,
    /// Plain Rust with the standard library's `exp` (the only variant off x86-64).
    Portable,
}

impl SoftmaxVariant {
    /// The best variant this CPU supports, detected once and cached.
    pub fn detect() -> SoftmaxVariant {
        static CHOICE: OnceLock<SoftmaxVariant> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            [SoftmaxVariant::Avx512, SoftmaxVariant::Avx2Fma]
                .into_iter()
                .find(|v| v.is_supported())
                .unwrap_or(SoftmaxVariant::Portable)
        })
    }

    /// Whether this CPU can run the variant.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            SoftmaxVariant::Avx512 => crate::x86::has_avx512(),
            #[cfg(target_arch = "x86_64")]
            SoftmaxVariant::Avx2Fma => crate::x86::has_avx2_fma(),
            #[cfg(not(target_arch = "x86_64"))]
            SoftmaxVariant::Avx512 | SoftmaxVariant::Avx2Fma => false,
            SoftmaxVariant::Portable => true,
        }
    }

    pub(crate) fn ops(self) -> &'static RowOps {
        assert!(
            self.is_supported(),
            "softmax variant {self:?} is not supported by this CPU"
        );
        match self {
            #[cfg(target_arch = "x86_64")]
            SoftmaxVariant::Avx512 => &avx512::OPS,
            #[cfg(target_arch = "x86_64")]
            SoftmaxVariant::Avx2Fma => &avx2::OPS,
            #[cfg(not(target_arch = "x86_64"))]
            SoftmaxVariant::Avx512 | SoftmaxVariant::Avx2Fma => unreachable!(),
            SoftmaxVariant::Portable => &portable::OPS,
        }
    }
}

/// `out = softmax(x)` over consecutive rows of `row_len` elements (module docs), with the
/// detected variant.
///
/// # Panics
/// If the slices' lengths differ or are not a multiple of `row_len` (a `row_len` of 0 needs
/// empty slices).
pub fn softmax_rows(x: &[f32], out: &mut [f32], row_len: usize) {
    softmax_rows_with(SoftmaxVariant::detect(), x, out, row_len);
}

/// [`softmax_rows`] with a chosen variant.
///
/// # Panics
/// As [`softmax_rows`], and if the CPU cannot run the variant.
pub fn softmax_rows_with(variant: SoftmaxVariant, x: &[f32], out: &mut [f32], row_len: usize) {
    check_rows(x.len(), out.len(), row_len);
    // SAFETY: checked lengths; `out` is borrowed exclusively, so it overlaps nothing.
    unsafe { rows(variant.ops(), x.as_ptr(), out.as_mut_ptr(), x.len(), row_len) }
}

/// [`softmax_rows`] writing over its input.
///
/// # Panics
/// If the length is not a multiple of `row_len` (a `row_len` of 0 needs an empty slice).
pub fn softmax_rows_in_place(x: &mut [f32], row_len: usize) {
    softmax_rows_in_place_with(SoftmaxVariant::detect(), x, row_len);
}

/// [`softmax_rows_in_place`] with a chosen variant.
///
/// # Panics
/// As [`softmax_rows_in_place`], and if the CPU cannot run the variant.
pub fn softmax_rows_in_place_with(variant: SoftmaxVariant, x: &mut [f32], row_len: usize) {
    check_rows(x.len(), x.len(), row_len);
    let p = x.as_mut_ptr();
    // SAFETY: checked length; the output is the input exactly, which the passes allow.
    unsafe { rows(variant.ops(), p, p, x.len(), row_len) }
}

/// The rows of `x` through softmax into `out` with `ops`, each row's maximum taken in the loop
/// of the row before.
///
/// # Safety
/// `x` and `out` are valid for `len` elements (a multiple of `row_len`) and overlap only
/// exactly.
unsafe fn rows(ops: &RowOps, x: *const f32, out: *mut f32, len: usize, row_len: usize) {
    if row_len == 0 || len == 0 {
        return;
    }
    let n = row_len;
    let rows = len / n;
    // SAFETY (the slices and pointers below): row `r` is `x[r*n..(r+1)*n]`, in bounds; a row
    // is read as a slice only before any element of it is written, and `out`'s row `r` is
    // written only after its exponentials are stored.
    let mut m = (ops.max)(unsafe { std::slice::from_raw_parts(x, n) });
    for r in 0..rows {
        let next = if r + 1 < rows {
            unsafe { x.add((r + 1) * n) }
        } else {
            std::ptr::null()
        };
        let out_row = unsafe { out.add(r * n) };
        let e = unsafe { (ops.exp_sum)(x.add(r * n), out_row, n, safe_max(m), next) };
        (ops.scale)(unsafe { std::slice::from_raw_parts_mut(out_row, n) }, recip_sum(e.sum));
        m = e.next_max;
    }
}

fn check_rows(x: usize, out: usize, row_len: usize) {
    assert!(
        x == out && x.is_multiple_of(row_len),
        "softmax rows: input of {x} and output of {out} elements, rows of {row_len}"
    );
}

/// The row maximum that softmax subtracts: 0 for a row without a finite or `+inf` element, so
/// that such a row gives zeros instead of `-inf - -inf = NaN`.
fn safe_max(m: f32) -> f32 {
    if m > f32::NEG_INFINITY { m } else { 0.0 }
}

/// `1 / s`, or 1 for a sum that is 0 (or NaN): what the normalisation multiplies by.
fn recip_sum(s: f32) -> f32 {
    1.0 / if s > 0.0 { s } else { 1.0 }
}

#[cfg(test)]
mod tests;
