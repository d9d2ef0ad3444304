//! Splitting an index range over the threads of a pool (`mlc_kernels::ThreadPool`).

use mlc_kernels::ThreadPool;

/// Raw pointers handed to the threads of one parallel step.
///
/// The step guarantees that the pointees outlive the step and that concurrent chunks write
/// disjoint elements.
#[derive(Clone, Copy)]
pub struct SendPtr<T>(pub *mut T);

// SAFETY: see the type's documentation; the pointers are only dereferenced inside one step.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for SendPtr<T> {}

/// How many chunks to split `extent` iterations of `work` units each into: enough that each
/// chunk has at least `min_work` units, at most `threads` and at most `extent`.
pub fn chunk_count(threads: usize, extent: i64, work: u64, min_work: u64) -> usize {
    if threads <= 1 || extent <= 1 {
        return 1;
    }
    let total = (extent as u64).saturating_mul(work.max(1));
    let by_work = (total / min_work.max(1)).max(1);
    by_work.min(threads as u64).min(extent as u64) as usize
}

/// Runs `f(lo, hi)` over `0..extent` split into at most `chunks` contiguous ranges of nearly
/// equal length, one per participating thread of `pool` (the caller runs the first). The pool
/// may give fewer threads (it is busy, or smaller); the ranges still cover `0..extent` exactly.
pub fn parallel_for(pool: &ThreadPool, chunks: usize, extent: i64, f: &(dyn Fn(i64, i64) + Sync)) {
    if extent <= 0 {
        return;
    }
    let chunks = (chunks.max(1) as i64).min(extent) as usize;
    if chunks == 1 {
        f(0, extent);
        return;
    }
    pool.run(chunks, &|index, count| {
        let bound = |c: usize| (extent as i128 * c as i128 / count.max(1) as i128) as i64;
        let (lo, hi) = (bound(index), bound(index + 1));
        if lo < hi {
            f(lo, hi);
        }
    });
}
