//! Backing large buffers with transparent huge pages.
//!
//! A fresh multi-megabyte allocation is mapped lazily: its first write faults once per 4 KiB
//! page, and each fault costs about as much as writing the page. For a 64 MiB output that is
//! 16,384 faults, measured at ~6× the time of the kernel that fills it (`bench/memcpy_bw.rs`,
//! `memcpy_fresh` against `memcpy_fresh_4k`). With huge pages the same buffer takes 32 faults,
//! and streaming it crosses no 4 KiB boundaries, where hardware prefetchers stop.

/// Asks Linux to back the whole 2 MiB pages inside `[addr, addr + bytes)` with transparent huge
/// pages (buffers of 8 MiB and more only; smaller ones gain little and would round up a lot of
/// memory). Call it on a fresh allocation before its first write. Elsewhere, and on kernels
/// without THP, it does nothing.
pub fn advise_huge_pages(addr: usize, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = addr.div_ceil(HUGE) * HUGE;
        let end = addr.saturating_add(bytes) / HUGE * HUGE;
        if bytes >= 4 * HUGE && end > start {
            // SAFETY: madvise(MADV_HUGEPAGE) on whole pages inside an allocation the caller owns
            // only changes how the kernel backs that memory, never its contents; a kernel
            // without THP returns an error, which is ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (addr, bytes);
}
