//! The plain-copy reference for `bench/bandwidth.sh`: how fast this machine copies a buffer
//! larger than its caches, measured the ways a model run could copy it.
//!
//!   rustc -O -C target-cpu=native bench/memcpy_bw.rs -o target/memcpy_bw
//!   target/memcpy_bw [MIB] [ITERS] [THREADS]
//!
//! Prints one JSON line per variant: `{"variant": ..., "bytes": read + written, "median_ms",
//! "min_ms", "gb_s"}` (GB/s = bytes / median, 1 GB = 1e9 bytes).
//!
//! - `memcpy`: `copy_from_slice` into a destination written before (no page faults): the
//!   machine's copy bandwidth.
//! - `memcpy_threads`: the same, split over THREADS scoped threads.
//! - `memcpy_fresh`: into a freshly allocated buffer each time, advised to use transparent huge
//!   pages, as the runtime allocates an entry's outputs (`advise_huge_pages` in
//!   `runtime/src/cpu/storage.rs`): what a run returning a new tensor pays at best.
//! - `memcpy_fresh_4k`: a fresh buffer with the default 4 KiB pages (page faults included).
//!
//! No dependencies: it builds with plain `rustc`, so the bench script does not touch Cargo.toml.

use std::time::Instant;

fn madvise_huge(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: std::ffi::c_int) -> std::ffi::c_int;
        }
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize).next_multiple_of(HUGE);
        let end = (ptr as usize + len) / HUGE * HUGE;
        if start < end {
            // SAFETY: inside a live allocation; only advice.
            unsafe { madvise(start as *mut std::ffi::c_void, end - start, 14) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

fn fresh(n: usize, huge: bool) -> Vec<f32> {
    let mut v = vec![0.0f32; n];
    if huge {
        madvise_huge(v.as_mut_ptr().cast(), n * 4);
    }
    v
}

fn time(iters: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let median = if t.len() % 2 == 1 {
        t[t.len() / 2]
    } else {
        (t[t.len() / 2 - 1] + t[t.len() / 2]) / 2.0
    };
    (median, t[0])
}

fn report(variant: &str, bytes: usize, (median, min): (f64, f64)) {
    println!(
        "{{\"variant\":\"{variant}\",\"bytes\":{bytes},\"median_ms\":{median:.4},\"min_ms\":{min:.4},\"gb_s\":{:.3}}}",
        bytes as f64 / (median * 1e-3) / 1e9
    );
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let mib = args.first().copied().unwrap_or(64);
    let iters = args.get(1).copied().unwrap_or(20);
    let threads = args.get(2).copied().unwrap_or(2).max(1);
    let n = mib * (1 << 20) / 4;
    let bytes = 2 * n * 4;
    let mut src = fresh(n, true);
    for (i, x) in src.iter_mut().enumerate() {
        *x = i as f32;
    }
    let mut dst = fresh(n, true);
    dst.fill(1.0);

    report("memcpy", bytes, time(iters, || dst.copy_from_slice(&src)));
    report(
        "memcpy_threads",
        bytes,
        time(iters, || {
            let per = n.div_ceil(threads);
            std::thread::scope(|s| {
                for (d, c) in dst.chunks_mut(per).zip(src.chunks(per)) {
                    s.spawn(move || d.copy_from_slice(c));
                }
            });
        }),
    );
    report(
        "memcpy_fresh",
        bytes,
        time(iters, || {
            let mut v = fresh(n, true);
            v.copy_from_slice(&src);
            std::hint::black_box(&v);
        }),
    );
    report(
        "memcpy_fresh_4k",
        bytes,
        time(iters, || {
            let mut v = fresh(n, false);
            v.copy_from_slice(&src);
            std::hint::black_box(&v);
        }),
    );
    std::hint::black_box(&dst);
}
