//! Batched matrix multiplication: `[batch..., M, K] @ [batch..., K, N]` with batch strides
//! (a stride of 0 broadcasts that operand over the dimension).

use super::driver::{self, Ctx, Problem, RawA, RawB, RawC, SyncPtr, useful_threads};
use super::pack::PackedB;
use super::{GemmOpts, MatRef, span};
use crate::threadpool::ThreadPool;

/// A batch of read-only matrices: matrix `b` (a multi-index over the batch shape) starts at
/// `sum(b[d] * batch_strides[d])`, and its element `(i, j)` is `i * row_stride + j * col_stride`
/// further.
#[derive(Clone, Copy, Debug)]
pub struct BatchMatRef<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Rows of each matrix.
    pub rows: usize,
    /// Columns of each matrix.
    pub cols: usize,
    /// Distance between rows, in elements.
    pub row_stride: usize,
    /// Distance between columns, in elements.
    pub col_stride: usize,
    /// One stride per batch dimension; 0 broadcasts.
    pub batch_strides: &'a [usize],
}

/// A batch of row-major output matrices (rows `ld` apart); batches must not overlap.
#[derive(Debug)]
pub struct BatchMatMut<'a> {
    /// The elements.
    pub data: &'a mut [f32],
    /// Rows of each matrix.
    pub rows: usize,
    /// Columns of each matrix.
    pub cols: usize,
    /// Distance between rows, in elements.
    pub ld: usize,
    /// One stride per batch dimension.
    pub batch_strides: &'a [usize],
}

impl<'a> BatchMatRef<'a> {
    /// Contiguous row-major `[batch..., rows, cols]` with the given batch shape.
    pub fn contiguous(data: &'a [f32], rows: usize, cols: usize, batch_strides: &'a [usize]) -> Self {
        BatchMatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
            batch_strides,
        }
    }
}

/// The largest batch offset for a batch shape and strides.
fn max_offset(batch: &[usize], strides: &[usize]) -> usize {
    batch.iter().zip(strides).map(|(&d, &s)| d.saturating_sub(1) * s).sum()
}

/// Offsets of batch item `index` (row-major over the batch shape) for each stride list.
fn offsets<const N: usize>(batch: &[usize], strides: [&[usize]; N], mut index: usize) -> [usize; N] {
    let mut out = [0; N];
    for d in (0..batch.len()).rev() {
        let i = index % batch[d];
        index /= batch[d];
        for (o, s) in out.iter_mut().zip(strides.iter()) {
            *o += i * s.get(d).copied().unwrap_or(0);
        }
    }
    out
}

/// Whether the batches of an output overlap: sorted by stride, each batch dimension must step
/// past everything the inner ones span.
fn batches_overlap(batch: &[usize], strides: &[usize], inner_span: usize) -> bool {
    let mut dims: Vec<(usize, usize)> = batch
        .iter()
        .copied()
        .zip(strides.iter().copied())
        .filter(|&(d, _)| d > 1)
        .collect();
    dims.sort_by_key(|&(_, s)| s);
    let mut extent = inner_span;
    for (d, s) in dims {
        if s < extent {
            return true;
        }
        extent += s * (d - 1);
    }
    false
}

/// `C[b] = alpha * A[b] @ B[b] (+ C[b])`, then the epilogue, for every `b` in the batch shape.
///
/// The epilogue's bias is shared by all batches; its residual follows
/// [`Residual::batch_strides`](super::Residual::batch_strides). Many small matrices are spread
/// over the threads one batch item each; a few big ones use all threads each. A `B` broadcast
/// over the whole batch is packed once.
///
/// # Panics
///
/// If the shapes or stride lists disagree, a view is too small for its slice, or the output
/// batches overlap.
pub fn gemm_batched(
    pool: &ThreadPool,
    batch: &[usize],
    a: BatchMatRef<'_>,
    b: BatchMatRef<'_>,
    c: BatchMatMut<'_>,
    opts: &GemmOpts<'_>,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert!(
        b.rows == k && c.rows == m && c.cols == n,
        "gemm_batched shapes disagree: A {}x{}, B {}x{}, C {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    let rank = batch.len();
    assert!(
        a.batch_strides.len() == rank && b.batch_strides.len() == rank && c.batch_strides.len() == rank,
        "gemm_batched: batch shape {batch:?} needs {rank} strides per operand, got A {:?}, B {:?}, C {:?}",
        a.batch_strides,
        b.batch_strides,
        c.batch_strides
    );
    let res_strides: &[usize] = opts.epilogue.residual.map_or(&[], |r| r.batch_strides);
    assert!(
        res_strides.is_empty() || res_strides.len() == rank,
        "gemm_batched: the residual has {} batch strides for a batch of rank {rank}",
        res_strides.len()
    );
    let count: usize = batch.iter().product();
    let check = |name: &str, len: usize, mat_span: usize, strides: &[usize]| {
        let need = if mat_span == 0 || count == 0 {
            0
        } else {
            mat_span + max_offset(batch, strides)
        };
        assert!(
            len >= need,
            "gemm_batched: {name} needs {need} elements, the slice has {len}"
        );
    };
    check(
        "A",
        a.data.len(),
        span(m, k, a.row_stride, a.col_stride),
        a.batch_strides,
    );
    check(
        "B",
        b.data.len(),
        span(k, n, b.row_stride, b.col_stride),
        b.batch_strides,
    );
    assert!(
        m <= 1 || c.ld >= n,
        "gemm_batched: output rows overlap: ld {} < {n}",
        c.ld
    );
    check("C", c.data.len(), span(m, n, c.ld, 1), c.batch_strides);
    assert!(
        m == 0 || n == 0 || !batches_overlap(batch, c.batch_strides, span(m, n, c.ld, 1)),
        "gemm_batched: output batches overlap (batch {batch:?}, strides {:?})",
        c.batch_strides
    );
    if count == 0 || m == 0 || n == 0 {
        return;
    }
    let epi = opts.epilogue.raw_batched(m, n, max_offset(batch, res_strides));
    let ctx = Ctx::new(pool, opts.variant);
    // A B broadcast over every batch is packed once and shared.
    let shared_b = (count > 1 && b.batch_strides.iter().all(|&s| s == 0) && m > driver::SKINNY_M)
        .then(|| PackedB::from_mat(MatRef::from_strides(b.data, k, n, b.row_stride, b.col_stride)));
    let c_ptr = SyncPtr(c.data.as_mut_ptr());
    let problem = |index: usize| {
        let [oa, ob, oc, or] = offsets(
            batch,
            [a.batch_strides, b.batch_strides, c.batch_strides, res_strides],
            index,
        );
        let mut e = epi;
        if !e.res.is_null() {
            // SAFETY: `raw_batched` checked the residual covers the largest batch offset.
            e.res = unsafe { e.res.add(or) };
        }
        // A and B are empty when k == 0 (their slices may be too): their pointers are never
        // read then, so they are formed with `wrapping_add`; when k > 0 the offsets are at most
        // the largest batch offset, which the checks above found inside each slice.
        Problem {
            m,
            n,
            k,
            a: RawA {
                ptr: a.data.as_ptr().wrapping_add(oa),
                rs: a.row_stride,
                cs: a.col_stride,
            },
            b: match &shared_b {
                Some(packed) => packed.raw(),
                None => RawB::Strided {
                    ptr: b.data.as_ptr().wrapping_add(ob),
                    rs: b.row_stride,
                    cs: b.col_stride,
                },
            },
            // SAFETY: m, n > 0 here, and C covers the largest batch offset (checked above).
            c: RawC {
                ptr: unsafe { c_ptr.get().add(oc) },
                ld: c.ld,
            },
            alpha: opts.alpha,
            beta: if opts.accumulate { 1.0 } else { 0.0 },
            epi: e,
        }
    };
    let flops = 2 * m * n * k;
    let per_item = useful_threads(&ctx, flops, usize::MAX);
    if ctx.threads > 1 && count > 1 && (per_item < ctx.threads || count >= 2 * ctx.threads) {
        // Batch items over threads, each item on one thread.
        let nt = useful_threads(&ctx, flops.saturating_mul(count), count);
        ctx.par(nt, &|t, nt| {
            let serial = ctx.serial();
            let (b0, b1) = driver::split_range(count, nt, t, 1);
            for index in b0..b1 {
                // SAFETY: views checked above; output batches do not overlap, and each batch item
                // is computed by exactly one thread.
                unsafe { driver::run(&serial, &problem(index)) };
            }
        });
    } else {
        for index in 0..count {
            // SAFETY: as above, one item at a time on all threads.
            unsafe { driver::run(&ctx, &problem(index)) };
        }
    }
}
