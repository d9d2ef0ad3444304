//! Products with block-quantised weights: `C = A @ W^T` where `W[N, K]` (a Linear weight, as
//! GGUF files store it) is kept in blocks of [`QBLOCK`] values with a scale per block, and is
//! never expanded to `f32` in memory.
//!
//! Batch-1 decoding reads every weight once per token, so its speed is the speed at which the
//! weights stream from memory: a 4-bit block (20 bytes for 32 values in a GGUF file, 24 here
//! with `f32` scales) is 5 to 6 times less to read than the same values in `f32`. The kernels
//! widen each block into vector registers, scale it, and multiply it with several rows of `A`
//! at once (up to 8 on AVX-512, 4 otherwise), so for small `M` every block is decoded once per
//! call ([`quantized_pays_off`] says for which `M` that beats the `f32` weights).
//!
//! Each output `(i, j)` is `sum over t of w[j, t] * a[i, t]` with the weights `w = q * d (+ m)`
//! that [`QuantMatrix::dequantize_row`] gives (the SIMD kernels compute `q * d + m` with one
//! fused multiply-add, so a weight may differ from it in the last bit), in a different order of
//! additions than a plain `f32` product. Then `C = alpha * that (+ beta * C)` and the
//! [`Epilogue`](super::Epilogue), as for [`gemm`](super::gemm).

use super::driver::{Ctx, RawC, SyncPtr, split_range, useful_threads};
use super::{GemmOpts, KernelVariant, MatMut, MatRef};
use crate::threadpool::ThreadPool;

/// Values per block.
pub const QBLOCK: usize = 32;

/// How the blocks of a [`QuantMatrix`] store their 32 values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantFormat {
    /// 32 signed bytes, `value = q * d` (ggml's `Q8_0`).
    Int8,
    /// 16 bytes of 4-bit unsigned `q`: value `t` in the low nibble of byte `t`, value `t + 16`
    /// in its high nibble; `value = q * d + m`, with a minimum `m` per block (ggml's `Q4_1`).
    Nibble,
}

impl QuantFormat {
    /// Bytes of `q` per block.
    pub fn quant_bytes(self) -> usize {
        match self {
            QuantFormat::Int8 => QBLOCK,
            QuantFormat::Nibble => QBLOCK / 2,
        }
    }

    /// Whether blocks carry a minimum.
    pub fn has_min(self) -> bool {
        self == QuantFormat::Nibble
    }
}

/// Why [`QuantMatrix::new`] refused its parts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// Rows must be whole blocks.
    #[error("a row of {cols} values is not a whole number of {QBLOCK}-value blocks")]
    RaggedRow { cols: usize },
    /// A part has the wrong length for the shape.
    #[error("{part}: {found} values, a {rows}x{cols} {format:?} matrix needs {expected}")]
    Length {
        part: &'static str,
        format: QuantFormat,
        rows: usize,
        cols: usize,
        expected: usize,
        found: usize,
    },
}

/// A row-major `rows x cols` matrix of block-quantised values (see [`QuantFormat`]): block `b`
/// of row `r` holds values `32 b .. 32 b + 32` of that row. Scales and minimums are kept as
/// `f32` (a file's `f16` ones widen exactly), one per block in row order.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantMatrix {
    format: QuantFormat,
    rows: usize,
    cols: usize,
    scales: Vec<f32>,
    mins: Vec<f32>,
    quants: Vec<u8>,
}

impl QuantMatrix {
    /// A matrix from its parts: `scales` (and, for [`QuantFormat::Nibble`], `mins`; empty
    /// otherwise) with one value per block, `quants` with [`QuantFormat::quant_bytes`] per block.
    pub fn new(
        format: QuantFormat,
        rows: usize,
        cols: usize,
        scales: Vec<f32>,
        mins: Vec<f32>,
        quants: Vec<u8>,
    ) -> Result<QuantMatrix, QuantError> {
        if !cols.is_multiple_of(QBLOCK) {
            return Err(QuantError::RaggedRow { cols });
        }
        let blocks = rows * (cols / QBLOCK);
        let check = |part, expected, found| {
            if expected == found {
                Ok(())
            } else {
                Err(QuantError::Length {
                    part,
                    format,
                    rows,
                    cols,
                    expected,
                    found,
                })
            }
        };
        check("scales", blocks, scales.len())?;
        check("mins", if format.has_min() { blocks } else { 0 }, mins.len())?;
        check("quants", blocks * format.quant_bytes(), quants.len())?;
        Ok(QuantMatrix {
            format,
            rows,
            cols,
            scales,
            mins,
            quants,
        })
    }

    /// The block format.
    pub fn format(&self) -> QuantFormat {
        self.format
    }

    /// Number of rows (`N` of a Linear weight).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (`K`).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Bytes the matrix occupies (what a product reads).
    pub fn byte_size(&self) -> usize {
        (self.scales.len() + self.mins.len()) * 4 + self.quants.len()
    }

    fn blocks_per_row(&self) -> usize {
        self.cols / QBLOCK
    }

    /// Asks the CPU to start loading the blocks, scales and minimums of `rows` (clamped to the
    /// matrix) into the caches: one prefetch per cache line of each of the three arrays, where
    /// the rows are contiguous.
    #[inline]
    fn prefetch_rows(&self, rows: std::ops::Range<usize>) {
        let r0 = rows.start.min(self.rows);
        let r1 = rows.end.clamp(r0, self.rows);
        let nb = self.blocks_per_row();
        let qrow = nb * self.format.quant_bytes();
        prefetch_lines(&self.quants[r0 * qrow..r1 * qrow]);
        prefetch_lines(&self.scales[r0 * nb..r1 * nb]);
        if self.format.has_min() {
            prefetch_lines(&self.mins[r0 * nb..r1 * nb]);
        }
    }

    /// Row `r` as `f32`: `q * d` (`Int8`) or `q * d + m` (`Nibble`), a product then a sum, the
    /// way ggml defines the formats.
    ///
    /// # Panics
    ///
    /// If `r` is not a row or `out` does not hold `cols` values.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows, "row {r} of a {}-row matrix", self.rows);
        assert_eq!(out.len(), self.cols, "a row has {} values", self.cols);
        let nb = self.blocks_per_row();
        let qb = self.format.quant_bytes();
        for (b, vals) in out.chunks_exact_mut(QBLOCK).enumerate() {
            let blk = r * nb + b;
            let d = self.scales[blk];
            let q = &self.quants[blk * qb..(blk + 1) * qb];
            match self.format {
                QuantFormat::Int8 => {
                    for (v, &x) in vals.iter_mut().zip(q) {
                        *v = f32::from(x as i8) * d;
                    }
                }
                QuantFormat::Nibble => {
                    let m = self.mins[blk];
                    let (lo, hi) = vals.split_at_mut(QBLOCK / 2);
                    for ((l, h), &x) in lo.iter_mut().zip(hi).zip(q) {
                        *l = f32::from(x & 0x0F) * d + m;
                        *h = f32::from(x >> 4) * d + m;
                    }
                }
            }
        }
    }

    /// The whole matrix as row-major `f32` (see [`QuantMatrix::dequantize_row`]).
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        if self.cols > 0 {
            for (r, row) in out.chunks_exact_mut(self.cols).enumerate() {
                self.dequantize_row(r, row);
            }
        }
        out
    }

    /// The matrix whose row `r` is row `order[r]` of this one (blocks are copied as they are).
    ///
    /// # Panics
    ///
    /// If an entry of `order` is not a row.
    pub fn select_rows(&self, order: &[usize]) -> QuantMatrix {
        let nb = self.blocks_per_row();
        let qb = nb * self.format.quant_bytes();
        let mut out = QuantMatrix {
            rows: order.len(),
            scales: Vec::with_capacity(order.len() * nb),
            mins: Vec::with_capacity(if self.format.has_min() { order.len() * nb } else { 0 }),
            quants: Vec::with_capacity(order.len() * qb),
            ..*self
        };
        for &r in order {
            assert!(r < self.rows, "row {r} of a {}-row matrix", self.rows);
            out.scales.extend_from_slice(&self.scales[r * nb..(r + 1) * nb]);
            if self.format.has_min() {
                out.mins.extend_from_slice(&self.mins[r * nb..(r + 1) * nb]);
            }
            out.quants.extend_from_slice(&self.quants[r * qb..(r + 1) * qb]);
        }
        out
    }
}

/// Asks the CPU to start loading every cache line of `v` (a hint: nothing on other targets).
#[inline]
fn prefetch_lines<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let (start, bytes) = (v.as_ptr() as *const i8, std::mem::size_of_val(v));
        let mut off = 0;
        while off < bytes {
            // SAFETY: the address is inside the slice; a prefetch never faults anyway.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.add(off)) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Arguments of a quantised dot kernel over `MR` rows of `A` and `R` rows of `W`:
/// `out[i * R + r] = sum over blocks b < nb, t < 32 of w[r, 32 b + t] * a[i * lda + 32 b + t]`,
/// with `w = q * d (+ m)` as the block format defines it (in a kernel, possibly with a fused
/// multiply-add: rounding aside, the dequantised values).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QArgs {
    pub nb: usize,
    pub a: *const f32,
    pub lda: usize,
    /// Scales (and minimums) of row 0 of `W`; row `r`'s are `r * nb` further on.
    pub scales: *const f32,
    pub mins: *const f32,
    /// Blocks of row 0 of `W`; row `r`'s are `r * nb * quant_bytes` further on.
    pub quants: *const u8,
    /// `MR * R` sums.
    pub out: *mut f32,
}

/// A quantised dot kernel.
pub(crate) type QDotFn = unsafe fn(&QArgs);

/// A kernel and the number of `W` rows it takes (`R`).
pub(crate) type QKernel = (QDotFn, usize);

/// `C = alpha * A @ W^T` (or `+=` with [`GemmOpts::accumulate`]), then the epilogue, for a
/// block-quantised `W[N, K]`: `A` is `[M, K]`, `C` is `[M, N]`. Runs on up to
/// `pool.num_threads()` threads, which split the rows of `W`.
///
/// Made for small `M` (decoding, up to 16 rows): each block of `W` is decoded once per 8 rows
/// of `A` on AVX-512 (4 otherwise). A larger `M` gives the right result, decoding `W` again for
/// every such group of rows.
///
/// # Panics
///
/// If the shapes do not agree, or the epilogue's bias or residual is too small for `C`.
pub fn gemm_quantized(pool: &ThreadPool, a: MatRef<'_>, w: &QuantMatrix, c: MatMut<'_>, opts: &GemmOpts<'_>) {
    assert!(
        a.cols() == w.cols && a.rows() == c.rows() && w.rows == c.cols(),
        "gemm_quantized shapes disagree: A {}x{}, W {}x{} (used transposed), C {}x{}",
        a.rows(),
        a.cols(),
        w.rows,
        w.cols,
        c.rows(),
        c.cols()
    );
    let ctx = Ctx::new(pool, opts.variant);
    let (m, k, n) = (a.rows(), a.cols(), w.rows);
    if m == 0 || n == 0 {
        return;
    }
    let epi = opts.epilogue.raw(m, n);
    let (alpha, beta) = (opts.alpha, if opts.accumulate { 1.0 } else { 0.0 });
    // The kernels read rows of A contiguously; copy A if its columns are not.
    let copy: Vec<f32>;
    let (a_data, lda) = if a.col_stride() == 1 || k == 0 {
        (a.data(), a.row_stride())
    } else {
        copy = (0..m * k)
            .map(|x| a.data()[(x / k) * a.row_stride() + (x % k) * a.col_stride()])
            .collect();
        (copy.as_slice(), k)
    };
    let nb = w.blocks_per_row();
    let qb = w.format.quant_bytes();
    let (cap, kernel_for) = quant_kernels(ctx.isa.variant);
    let (cptr, ldc) = (SyncPtr(c.data.as_mut_ptr()), c.ld);
    let nt = useful_threads(&ctx, 2 * m * n * k.max(1), n.div_ceil(16));
    // How many kernel calls ahead the rows of W are prefetched: a kernel spends many
    // instructions per cache line of blocks, so the out-of-order window alone keeps too few
    // lines in flight to stream W at the memory's speed.
    let row_bytes = w.byte_size() / n;
    let ahead_groups = PREFETCH_BYTES.div_ceil(row_bytes.max(1));
    ctx.par(nt, &|t, nt| {
        let (n0, n1) = split_range(n, nt, t, 16);
        if n0 >= n1 {
            return;
        }
        let c = RawC {
            ptr: cptr.get(),
            ld: ldc,
        };
        let mut sums = [0.0f32; MAX_SUMS];
        let mut row0 = 0;
        while row0 < m {
            let rows = cap.min(m - row0);
            let (wide, wide_r) = kernel_for(w.format, rows, true);
            let (narrow, _) = kernel_for(w.format, rows, false);
            let mut j = n0;
            while j < n1 {
                let (kernel, r) = if n1 - j >= wide_r { (wide, wide_r) } else { (narrow, 1) };
                w.prefetch_rows(j + r * ahead_groups..(j + r * (ahead_groups + 1)).min(n1));
                let args = QArgs {
                    nb,
                    a: a_data.as_ptr().wrapping_add(row0 * lda),
                    lda,
                    scales: w.scales.as_ptr().wrapping_add(j * nb),
                    mins: w
                        .mins
                        .as_ptr()
                        .wrapping_add(if w.format.has_min() { j * nb } else { 0 }),
                    quants: w.quants.as_ptr().wrapping_add(j * nb * qb),
                    out: sums.as_mut_ptr(),
                };
                // SAFETY: rows row0..row0+rows of A hold `k = 32 nb` floats, `lda` apart (the
                // view or its copy); rows j..j+r of W have their scales, minimums (Nibble) and
                // blocks (nothing is read when `nb` is 0); `sums` holds `MAX_SUMS >= rows * r`
                // floats.
                unsafe { kernel(&args) };
                for i in 0..rows {
                    for (jj, &s) in sums[i * r..(i + 1) * r].iter().enumerate() {
                        // SAFETY: (row0 + i, j + jj) is inside C, in this thread's columns.
                        unsafe {
                            let cp = c.at(row0 + i, j + jj);
                            *cp = if beta == 0.0 { alpha * s } else { alpha * s + beta * *cp };
                        }
                    }
                }
                j += r;
            }
            row0 += rows;
        }
        if !epi.is_identity() {
            // SAFETY: the block this thread wrote; bias and residual cover C (`Epilogue::raw`).
            unsafe { (ctx.isa.epilogue)(&epi, c.at(0, n0), c.ld, 0, m, n0, n1 - n0) };
        }
    });
}

/// How far ahead (bytes of `W`) the rows of `W` are prefetched.
const PREFETCH_BYTES: usize = 4096;

/// Whether [`gemm_quantized`] beats an `f32` product (whose weights stream from memory) for `m`
/// rows of `A` with `k` columns, on this CPU: with at most 4 rows always; with up to the rows
/// one kernel call takes (8 on AVX-512, 4 otherwise), each block decoded once, when those rows
/// of `A` fit in 48 KiB (an L1 cache). Measured on a Zen 4 core: 4 x 4096 x 4096 ran at 57-80
/// GFLOP/s in blocks against 40 in `f32`; 8 x 576 x 49152 at 64-68 against 38; but 8 x 4096 x
/// 4096 at 38-43 against 58, and 16 rows (each block decoded twice) at half the `f32` speed.
pub fn quantized_pays_off(m: usize, k: usize) -> bool {
    let (cap, _) = quant_kernels(KernelVariant::detect());
    m <= 4 || (m <= cap && m * k * 4 <= 48 << 10)
}

/// Most sums one kernel call returns (`MR * R`, over every variant's table).
const MAX_SUMS: usize = 16;

/// The most rows of `A` per call, and the kernel for a format and a row count (`1..=cap`):
/// with `wide`, the variant's widest kernel for that many rows (several rows of `W` at once),
/// else one that takes one row of `W`.
fn quant_kernels(variant: KernelVariant) -> (usize, fn(QuantFormat, usize, bool) -> QKernel) {
    match variant {
        #[cfg(target_arch = "x86_64")]
        KernelVariant::Avx512 => (8, super::quant_avx512::kernel_for),
        #[cfg(target_arch = "x86_64")]
        KernelVariant::Avx2Fma => (4, super::quant_avx2::kernel_for),
        _ => (4, portable_for),
    }
}

fn portable_for(format: QuantFormat, rows: usize, _wide: bool) -> QKernel {
    let f: QDotFn = match (format, rows) {
        (QuantFormat::Int8, 1) => portable::<1, false>,
        (QuantFormat::Int8, 2) => portable::<2, false>,
        (QuantFormat::Int8, 3) => portable::<3, false>,
        (QuantFormat::Int8, 4) => portable::<4, false>,
        (QuantFormat::Nibble, 1) => portable::<1, true>,
        (QuantFormat::Nibble, 2) => portable::<2, true>,
        (QuantFormat::Nibble, 3) => portable::<3, true>,
        (QuantFormat::Nibble, 4) => portable::<4, true>,
        _ => panic!("no portable quantised kernel for {rows} rows"),
    };
    (f, 1)
}

/// The portable kernel (one row of `W`): each block widened to the 32 dequantised weights, then
/// `MR` dot products.
///
/// # Safety
///
/// As [`QArgs`], with `MR` rows of `A` and one row of `W`.
unsafe fn portable<const MR: usize, const NIBBLE: bool>(p: &QArgs) {
    let qb = if NIBBLE { QBLOCK / 2 } else { QBLOCK };
    let mut acc = [0.0f32; MR];
    let mut w = [0.0f32; QBLOCK];
    for b in 0..p.nb {
        // SAFETY: block `b < nb` of the row, its scale (and minimum).
        let (d, q) = unsafe { (*p.scales.add(b), std::slice::from_raw_parts(p.quants.add(b * qb), qb)) };
        if NIBBLE {
            // SAFETY: as above.
            let m = unsafe { *p.mins.add(b) };
            let (lo, hi) = w.split_at_mut(QBLOCK / 2);
            for ((l, h), &x) in lo.iter_mut().zip(hi).zip(q) {
                *l = f32::from(x & 0x0F) * d + m;
                *h = f32::from(x >> 4) * d + m;
            }
        } else {
            for (v, &x) in w.iter_mut().zip(q) {
                *v = f32::from(x as i8) * d;
            }
        }
        for (i, s) in acc.iter_mut().enumerate() {
            // SAFETY: block `b` of row `i < MR` of A.
            let a = unsafe { std::slice::from_raw_parts(p.a.add(i * p.lda + b * QBLOCK), QBLOCK) };
            *s += w.iter().zip(a).map(|(x, y)| x * y).sum::<f32>();
        }
    }
    for (i, s) in acc.into_iter().enumerate() {
        // SAFETY: `out` holds MR floats (R = 1).
        unsafe { *p.out.add(i) = s };
    }
}
