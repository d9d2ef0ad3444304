//! Splitting an index range over the threads of a pool (`mlc_kernels::ThreadPool`).
//!
//! Waking a pool's sleeping worker costs the caller a system call and the worker tens of
//! microseconds before it runs, so only work well above that is split ([`chunk_count`]); the
//! rest runs inline on the caller. Work that is split goes out in a few pieces per thread,
//! taken one at a time, so a worker that starts late (or is descheduled on a busy machine)
//! leaves its share to the threads that are running instead of holding the step up.

use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Pieces per thread when work is split (the caller and early workers take the pieces of late
/// ones).
const PIECES_PER_THREAD: u64 = 4;

/// How many pieces to split `extent` iterations of `work` units each into: 1 (run inline) when
/// the whole is under `min_total` units or there is one thread; else enough that each piece has
/// at least `min_piece` units, at most [`PIECES_PER_THREAD`] per thread and at most `extent`.
pub fn chunk_count(threads: usize, extent: i64, work: u64, min_total: u64, min_piece: u64) -> usize {
    if threads <= 1 || extent <= 1 {
        return 1;
    }
    let total = (extent as u64).saturating_mul(work.max(1));
    if total < min_total {
        return 1;
    }
    let by_work = (total / min_piece.max(1)).max(1);
    by_work.min(threads as u64 * PIECES_PER_THREAD).min(extent as u64) as usize
}

/// Runs `f(lo, hi)` over `0..extent` split into `pieces` contiguous ranges of nearly equal
/// length, taken one at a time by the participating threads of `pool` (the caller included).
/// The pool may give fewer threads (it is busy, or smaller); the ranges still cover
/// `0..extent` exactly, each once.
pub fn parallel_for(pool: &ThreadPool, pieces: usize, extent: i64, f: &(dyn Fn(i64, i64) + Sync)) {
    if extent <= 0 {
        return;
    }
    let pieces = (pieces.max(1) as i64).min(extent) as usize;
    if pieces == 1 || pool.num_threads() <= 1 {
        f(0, extent);
        return;
    }
    let next = AtomicUsize::new(0);
    let bound = |c: usize| (extent as i128 * c as i128 / pieces as i128) as i64;
    pool.run(pieces, &|_, _| {
        loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= pieces {
                return;
            }
            let (lo, hi) = (bound(c), bound(c + 1));
            if lo < hi {
                f(lo, hi);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn small_work_runs_inline_and_large_work_is_split() {
        assert_eq!(chunk_count(2, 1000, 10, 1 << 17, 1 << 15), 1);
        assert_eq!(chunk_count(1, 1 << 20, 10, 1 << 17, 1 << 15), 1);
        assert_eq!(chunk_count(2, 1 << 20, 10, 1 << 17, 1 << 15), 8);
        assert_eq!(chunk_count(2, 3, 1 << 20, 1 << 17, 1 << 15), 3);
    }

    #[test]
    fn pieces_cover_the_range_once() {
        let pool = ThreadPool::new(3);
        for (pieces, extent) in [(1, 5), (8, 5), (7, 100), (12, 1001)] {
            let seen = Mutex::new(vec![0u32; extent as usize]);
            parallel_for(&pool, pieces, extent, &|lo, hi| {
                let mut s = seen.lock().unwrap();
                for i in lo..hi {
                    s[i as usize] += 1;
                }
            });
            assert!(seen.into_inner().unwrap().iter().all(|&n| n == 1));
        }
    }
}
