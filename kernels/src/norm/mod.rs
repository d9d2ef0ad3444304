//! Layer normalisation over the rows of a row-major `f32` matrix, with the semantics of
//! `std.nn.layer_norm` as the Graph IR writes it (`n` the row length):
//!
//! ```text
//! mean = sum(x) / n;  var = sum((x - mean)^2) / n
//! out  = (x - mean) * rsqrt(var + eps) * weight + bias
//! ```
//!
//! Three passes over each row: the sum, the squared deviations, the normalisation. The sum of
//! row `r + 1` is taken in the same loop as the normalisation of row `r`, so the row's trip from
//! memory overlaps arithmetic, and the other passes find their row in the L1 cache for the usual
//! row lengths. The passes run on 8 lanes (AVX2+FMA) or plain Rust, chosen at run time. Rows
//! are independent, so splitting them over threads gives the same bits as one call.
//!
//! ```
//! use mlc_kernels::norm::layer_norm_rows;
//!
//! let x = [1.0f32, 2.0, 3.0, 4.0];
//! let mut out = [0.0f32; 4];
//! layer_norm_rows(&x, &mut out, &[1.0, 1.0], &[0.0, 10.0], 0.0, 2);
//! assert_eq!(out, [-1.0, 11.0, -1.0, 11.0]);
//! ```

#[cfg(target_arch = "x86_64")]
mod avx2;
mod portable;

/// The row passes for one instruction set.
struct NormOps {
    /// The sum of a row.
    sum: fn(&[f32]) -> f32,
    /// `sum((x - mean)^2)`.
    sq_dev_sum: fn(&[f32], f32) -> f32,
    /// `out[j] = (x[j] - mean) * rstd * weight[j] + bias[j]` for the row `r` describes,
    /// returning the sum of `r.next[..n]` (0 if `next` is null), read in the same loop.
    ///
    /// # Safety
    /// The pointers of `r` are valid for `r.n` elements; `out` overlaps `x` only exactly
    /// (element `j` is read before it is written) and overlaps nothing else.
    normalize: unsafe fn(&NormRow) -> f32,
}

/// One row to normalise: addresses of `n` elements each.
#[derive(Clone, Copy)]
struct NormRow {
    x: *const f32,
    out: *mut f32,
    n: usize,
    stats: RowStats,
    weight: *const f32,
    bias: *const f32,
    /// The next row of `x`, or null.
    next: *const f32,
}

/// A row's mean and reciprocal standard deviation.
#[derive(Clone, Copy)]
struct RowStats {
    mean: f32,
    rstd: f32,
}

fn ops() -> &'static NormOps {
    #[cfg(target_arch = "x86_64")]
    if crate::x86::has_avx2_fma() {
        return &avx2::OPS;
    }
    &portable::OPS
}

/// `out = layer_norm(x) * weight + bias` over consecutive rows of `row_len` elements (module
/// docs), `out` may not overlap `x`; see [`layer_norm_rows_in_place`] for that.
///
/// # Panics
/// If `x` and `out` differ in length, the length is not a multiple of `row_len` (a `row_len` of
/// 0 needs empty slices), or `weight` or `bias` is not `row_len` long.
pub fn layer_norm_rows(x: &[f32], out: &mut [f32], weight: &[f32], bias: &[f32], eps: f32, row_len: usize) {
    check(x.len(), out.len(), weight.len(), bias.len(), row_len);
    // SAFETY: checked lengths; `out` is borrowed exclusively, so it overlaps nothing.
    unsafe { rows(ops(), x.as_ptr(), out.as_mut_ptr(), x.len(), weight, bias, eps, row_len) }
}

/// [`layer_norm_rows`] writing over its input.
///
/// # Panics
/// As [`layer_norm_rows`].
pub fn layer_norm_rows_in_place(x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32, row_len: usize) {
    check(x.len(), x.len(), weight.len(), bias.len(), row_len);
    let p = x.as_mut_ptr();
    // SAFETY: checked lengths; the output is the input exactly, which the passes allow.
    unsafe { rows(ops(), p, p, x.len(), weight, bias, eps, row_len) }
}

fn check(x: usize, out: usize, weight: usize, bias: usize, row_len: usize) {
    assert!(
        x == out && x.is_multiple_of(row_len) && weight == row_len && bias == row_len,
        "layer norm rows: input of {x}, output of {out}, weight of {weight} and bias of {bias} \
         elements for rows of {row_len}"
    );
}

/// The rows of `x` normalised into `out` with `ops`.
///
/// # Safety
/// `x` and `out` are valid for `len` elements (a multiple of `row_len`) and overlap only
/// exactly; `weight` and `bias` hold `row_len` elements.
#[allow(clippy::too_many_arguments)]
unsafe fn rows(
    ops: &NormOps,
    x: *const f32,
    out: *mut f32,
    len: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
    row_len: usize,
) {
    if row_len == 0 || len == 0 {
        return;
    }
    let n = row_len;
    let rows = len / n;
    // SAFETY (the slices and pointers below): row `r` is `x[r*n..(r+1)*n]`, in bounds; a row
    // is read as a slice only before any element of it is written.
    let mut sum = (ops.sum)(unsafe { std::slice::from_raw_parts(x, n) });
    for r in 0..rows {
        let row = unsafe { std::slice::from_raw_parts(x.add(r * n), n) };
        let mean = sum / n as f32;
        let var = (ops.sq_dev_sum)(row, mean) / n as f32;
        let stats = RowStats {
            mean,
            rstd: 1.0 / (var + eps).sqrt(),
        };
        let row = NormRow {
            x: unsafe { x.add(r * n) },
            out: unsafe { out.add(r * n) },
            n,
            stats,
            weight: weight.as_ptr(),
            bias: bias.as_ptr(),
            next: if r + 1 < rows {
                unsafe { x.add((r + 1) * n) }
            } else {
                std::ptr::null()
            },
        };
        sum = unsafe { (ops.normalize)(&row) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f64> {
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        let rstd = 1.0 / (var + f64::from(eps)).sqrt();
        x.iter()
            .zip(w.iter().zip(b))
            .map(|(&v, (&w, &b))| (f64::from(v) - mean) * rstd * f64::from(w) + f64::from(b))
            .collect()
    }

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + seed) * 7919) % 2001) as f32 / 100.0 - 10.0 + (seed % 7) as f32)
            .collect()
    }

    #[test]
    fn rows_match_f64_layer_norm_on_every_variant() {
        let variants: Vec<&NormOps> = {
            let mut v = vec![&portable::OPS];
            #[cfg(target_arch = "x86_64")]
            if crate::x86::has_avx2_fma() {
                v.push(&avx2::OPS);
            }
            v
        };
        for (k, ops) in variants.into_iter().enumerate() {
            for n in [1, 2, 7, 8, 9, 16, 23, 384, 1024, 1031] {
                let x = data(4 * n, n);
                let w = data(n, 3);
                let b = data(n, 5);
                let mut out = vec![f32::NAN; x.len()];
                let mut inplace = x.clone();
                // SAFETY: lengths as `rows` requires; `out` is separate, `inplace` exact.
                unsafe {
                    rows(ops, x.as_ptr(), out.as_mut_ptr(), x.len(), &w, &b, 1e-5, n);
                    let p = inplace.as_mut_ptr();
                    rows(ops, p, p, x.len(), &w, &b, 1e-5, n);
                }
                assert_eq!(out, inplace, "variant {k}, rows of {n}: in place differs");
                for (r, (row, got)) in x.chunks(n).zip(out.chunks(n)).enumerate() {
                    let want = reference(row, &w, &b, 1e-5);
                    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(g) - w).abs() <= 2e-5 * scale,
                            "variant {k}, rows of {n}: row {r}[{j}] = {g}, want {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_public_entry_points_agree() {
        let (n, rows) = (37, 5);
        let x = data(rows * n, 1);
        let (w, b) = (data(n, 2), data(n, 4));
        let mut out = vec![0.0; x.len()];
        layer_norm_rows(&x, &mut out, &w, &b, 1e-5, n);
        let mut inplace = x.clone();
        layer_norm_rows_in_place(&mut inplace, &w, &b, 1e-5, n);
        assert_eq!(out, inplace);
        let want = reference(&x[n..2 * n], &w, &b, 1e-5);
        assert!(
            (f64::from(out[n + 3]) - want[3]).abs() < 1e-4,
            "{} vs {}",
            out[n + 3],
            want[3]
        );
        layer_norm_rows(&[], &mut [], &[], &[], 1e-5, 0);
    }

    #[test]
    #[should_panic(expected = "weight of 3")]
    fn a_short_weight_is_refused() {
        layer_norm_rows(&[0.0; 8], &mut [0.0; 8], &[1.0; 3], &[0.0; 4], 1e-5, 4);
    }
}
