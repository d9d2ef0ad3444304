//! Packing of GEMM operands into the layouts the micro-kernels read, and the aligned scratch
//! buffers that hold them.
//!
//! - `B` panels: columns `p*NR .. p*NR + NR` of `B`, each row `NR` consecutive floats (zero
//!   padded past `N`), cut into K blocks as described on [`PackedLayout`]. Every kernel variant
//!   reads this one layout ([`PackedB`]).
//! - `A` micro-panels: `r <= MR` rows as `[kc][r]` (k-major: the `r` values of one `k` are
//!   adjacent), one after the other, `r * kc` floats each.

use std::cell::Cell;

use super::NR;
use super::driver::{RawA, RawB};
use crate::memory::advise_huge_pages;

/// 64 bytes of floats, so a `Vec<Line>` is cache-line (and AVX-512) aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A growable, 64-byte aligned buffer of floats.
#[derive(Clone, Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
}

impl AlignedBuf {
    /// A buffer of at least `len` zeroed floats.
    pub(crate) fn zeroed(len: usize) -> Self {
        let lines = len.div_ceil(16);
        let mut v: Vec<Line> = Vec::with_capacity(lines);
        advise_huge_pages(v.as_ptr() as usize, lines * 64);
        v.resize(lines, Line([0.0; 16]));
        AlignedBuf { lines: v }
    }

    /// Makes room for `len` floats (the contents are not kept when it grows).
    pub(crate) fn reserve_len(&mut self, len: usize) {
        if self.len() < len {
            *self = AlignedBuf::zeroed(len);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lines.len() * 16
    }

    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.lines.as_ptr().cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.lines.as_mut_ptr().cast()
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with no padding (64 bytes, align 64), so
        // the vector's storage is `16 * lines.len()` initialised floats.
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }
}

/// Per-thread scratch buffers, reused across calls so that the hot path does not allocate (large
/// allocations would be fresh, page-faulting memory every call).
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// Packed `A` blocks (each thread).
    A,
    /// The packed `B` of a call without a [`PackedB`] (the calling thread).
    B,
    /// Small temporaries: the packed tail of a streamed `B`, a contiguous copy of `A`.
    Tail,
}

thread_local! {
    static SCRATCH: [Cell<AlignedBuf>; 3] = Default::default();
}

/// A scratch buffer taken from the thread's slot and given back on drop. A nested use of the same
/// slot on the same thread simply gets a fresh buffer.
pub(crate) struct Scratch {
    slot: Slot,
    pub(crate) buf: AlignedBuf,
}

impl Scratch {
    pub(crate) fn take(slot: Slot, len: usize) -> Scratch {
        let mut buf = SCRATCH.with(|s| s[slot as usize].take());
        buf.reserve_len(len);
        Scratch { slot, buf }
    }

    pub(crate) fn ptr(&mut self) -> *mut f32 {
        self.buf.as_mut_ptr()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // During thread teardown the slot may be gone already; then the buffer is just freed.
        let _ = SCRATCH.try_with(|s| s[self.slot as usize].set(buf));
    }
}

/// Packs rows `i0..i0 + mc`, columns `k0..k0 + kc` of `A` into micro-panels of `mr` rows (the
/// last one has `mc % mr` rows if that is not 0), each `[kc][rows]`.
///
/// # Safety
///
/// `a` must be readable over those rows and columns; `dst` must hold `mc * kc` floats.
pub(crate) unsafe fn pack_a(dst: *mut f32, a: RawA, i0: usize, mc: usize, k0: usize, kc: usize, mr: usize) {
    let mut ir = 0;
    while ir < mc {
        let r = mr.min(mc - ir);
        // SAFETY: panel `ir / mr` starts at `ir * kc` and holds `r * kc` floats, within `mc * kc`.
        let panel = unsafe { dst.add(ir * kc) };
        // SAFETY: the source rows and columns are in the view by the caller's contract.
        unsafe { pack_a_panel(panel, a, i0 + ir, r, k0, kc) };
        ir += r;
    }
}

/// Packs one `[kc][r]` micro-panel.
///
/// # Safety
///
/// As [`pack_a`], for `r` rows from `i0`; `dst` must hold `r * kc` floats.
pub(crate) unsafe fn pack_a_panel(dst: *mut f32, a: RawA, i0: usize, r: usize, k0: usize, kc: usize) {
    // SAFETY (whole body): every source index is `(i0 + i) * rs + (k0 + k) * cs` with `i < r`,
    // `k < kc`, inside the view; every destination index is `k * r + i < r * kc`.
    unsafe {
        let base = a.ptr.add(i0 * a.rs + k0 * a.cs);
        if a.rs == 1 {
            // Columns of A are contiguous: copy `r` floats per k.
            for k in 0..kc {
                std::ptr::copy_nonoverlapping(base.add(k * a.cs), dst.add(k * r), r);
            }
        } else if a.cs == 1 {
            // Rows are contiguous: transpose blocks of 8 k at a time, row by row.
            for i in 0..r {
                let src = base.add(i * a.rs);
                for k in 0..kc {
                    *dst.add(k * r + i) = *src.add(k);
                }
            }
        } else {
            for k in 0..kc {
                for i in 0..r {
                    *dst.add(k * r + i) = *base.add(i * a.rs + k * a.cs);
                }
            }
        }
    }
}

/// Where the packed `B` of a `k x n` matrix keeps its elements.
///
/// `K` is cut into blocks of `kcb` rows (the GEMM's `KC`, the last block may be shorter); within
/// a block, panel `p` (columns `p*NR ..`) is `[kc][NR]`, and the panels of a block follow each
/// other. So the `KC x NC` block of `B` that the blocked loops keep in L2 is one contiguous range
/// (panels of a whole-`K` layout would sit a power-of-two stride apart and collide in the cache
/// sets), and a skinny call streams each panel's `kc` rows contiguously.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedLayout {
    pub k: usize,
    pub n: usize,
    pub kcb: usize,
}

impl PackedLayout {
    pub(crate) fn new(k: usize, n: usize, kcb: usize) -> Self {
        PackedLayout { k, n, kcb: kcb.max(1) }
    }

    pub(crate) fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// Floats in one packed row of all panels (`n` rounded up to whole panels).
    pub(crate) fn npad(&self) -> usize {
        self.panels() * NR
    }

    /// Floats in the whole packed matrix.
    pub(crate) fn len(&self) -> usize {
        self.k * self.npad()
    }

    /// Rows in the K block that starts at row `k0` (a multiple of `kcb`).
    pub(crate) fn block_rows(&self, k0: usize) -> usize {
        self.kcb.min(self.k - k0)
    }

    /// Offset of element `(kk, j)`.
    pub(crate) fn offset(&self, kk: usize, j: usize) -> usize {
        let k0 = kk / self.kcb * self.kcb;
        k0 * self.npad() + (j / NR) * self.block_rows(k0) * NR + (kk - k0) * NR + j % NR
    }
}

/// Packs panels `p0..p1` of a strided `B` (`(i, j)` at `ptr + i * rs + j * cs`) into `dst` in
/// `layout`, zero padding the columns past `n`.
///
/// # Safety
///
/// `b` must be readable as a `layout.k x layout.n` view; `dst` must hold `layout.len()` floats.
pub(crate) unsafe fn pack_b_panels(
    dst: *mut f32,
    b: (*const f32, usize, usize),
    layout: PackedLayout,
    p0: usize,
    p1: usize,
) {
    let (ptr, rs, cs) = b;
    let (k, n) = (layout.k, layout.n);
    let mut k0 = 0;
    while k0 < k {
        let kc = layout.block_rows(k0);
        if cs == 1 {
            // Row-major B: read each row once, left to right (what the prefetchers follow
            // best), and drop its 32-float pieces into the panels of this K block.
            // SAFETY: the block starts at `layout.offset(k0, 0)`; its panels are `kc * NR` apart.
            let block = unsafe { dst.add(layout.offset(k0, 0)) };
            for kk in 0..kc {
                for p in p0..p1 {
                    let j0 = p * NR;
                    let w = NR.min(n - j0);
                    // SAFETY: destination `layout.offset(k0 + kk, j0) + NR <= layout.len()`;
                    // source `(k0 + kk) * rs + j0 + w <= (k - 1) * rs + n`, inside the view.
                    unsafe {
                        let d = block.add(p * kc * NR + kk * NR);
                        let s = ptr.add((k0 + kk) * rs + j0);
                        if w == NR {
                            // A fixed-size copy compiles to a few vector moves (a variable-length
                            // one would be a `memcpy` call per 128 bytes).
                            (d as *mut [f32; NR]).write_unaligned((s as *const [f32; NR]).read_unaligned());
                        } else {
                            for j in 0..NR {
                                *d.add(j) = if j < w { *s.add(j) } else { 0.0 };
                            }
                        }
                    }
                }
            }
            k0 += kc;
            continue;
        }
        for p in p0..p1 {
            let j0 = p * NR;
            let w = NR.min(n - j0);
            // SAFETY (whole block): destination indices are `layout.offset(k0 + kk, j0 + j)` for
            // `kk < kc`, `j < NR`, below `layout.len()`; source indices are
            // `(k0 + kk) * rs + (j0 + j) * cs` with `k0 + kk < k`, `j0 + j < n`, inside the view.
            unsafe {
                let panel = dst.add(layout.offset(k0, j0));
                let src = ptr.add(k0 * rs + j0 * cs);
                if rs == 1 {
                    // Transposed B (rows of the stored [N,K] matrix are contiguous in k): gather 8
                    // k at a time to keep the writes within a few cache lines.
                    if w < NR {
                        for kk in 0..kc {
                            std::ptr::write_bytes(panel.add(kk * NR + w), 0, NR - w);
                        }
                    }
                    let mut kk = 0;
                    while kk + 8 <= kc {
                        for j in 0..w {
                            let s = src.add(j * cs + kk);
                            for q in 0..8 {
                                *panel.add((kk + q) * NR + j) = *s.add(q);
                            }
                        }
                        kk += 8;
                    }
                    for j in 0..w {
                        let s = src.add(j * cs);
                        for q in kk..kc {
                            *panel.add(q * NR + j) = *s.add(q);
                        }
                    }
                } else {
                    for kk in 0..kc {
                        let d = panel.add(kk * NR);
                        for j in 0..NR {
                            *d.add(j) = if j < w { *src.add(kk * rs + j * cs) } else { 0.0 };
                        }
                    }
                }
            }
        }
        k0 += kc;
    }
}

/// A weight matrix `B[K,N]` packed once (at model load time) into the micro-kernels' panel layout.
///
/// Packing costs one pass over the weights; afterwards [`gemm_prepacked`](super::gemm_prepacked)
/// reads the panels directly (no per-call packing), and batch-1 calls stream them once.
#[derive(Clone)]
pub struct PackedB {
    buf: AlignedBuf,
    layout: PackedLayout,
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedB")
            .field("k", &self.layout.k)
            .field("n", &self.layout.n)
            .finish()
    }
}

impl PackedB {
    /// Packs `B[K,N]` given contiguous: `b` is `[K,N]` row-major, or `[N,K]` row-major when
    /// `transposed` (how Linear weights are stored).
    ///
    /// # Panics
    ///
    /// If `b.len() < k * n`.
    pub fn new(b: &[f32], k: usize, n: usize, transposed: bool) -> Self {
        let view = if transposed {
            super::MatRef::transposed(b, k, n, k)
        } else {
            super::MatRef::new(b, k, n, n)
        };
        Self::from_mat(view)
    }

    /// Packs any `[K,N]` view.
    pub fn from_mat(b: super::MatRef<'_>) -> Self {
        let kcb = super::driver::blocking(super::KernelVariant::detect().isa()).kc;
        let layout = PackedLayout::new(b.rows(), b.cols(), kcb);
        let mut buf = AlignedBuf::zeroed(layout.len());
        // SAFETY: the view was checked against its slice; `buf` holds `layout.len()` floats.
        unsafe {
            pack_b_panels(
                buf.as_mut_ptr(),
                (b.data().as_ptr(), b.row_stride(), b.col_stride()),
                layout,
                0,
                layout.panels(),
            )
        };
        PackedB { buf, layout }
    }

    /// Rows of `B` (the reduction length).
    pub fn k(&self) -> usize {
        self.layout.k
    }

    /// Columns of `B` (outputs).
    pub fn n(&self) -> usize {
        self.layout.n
    }

    /// Element `(i, j)` of `B`.
    ///
    /// # Panics
    ///
    /// If out of range.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        let (k, n) = (self.layout.k, self.layout.n);
        assert!(i < k && j < n, "({i}, {j}) is outside the packed {k}x{n} matrix");
        self.buf.as_slice()[self.layout.offset(i, j)]
    }

    pub(crate) fn raw(&self) -> RawB {
        RawB::Packed {
            ptr: self.buf.as_ptr(),
            layout: self.layout,
        }
    }
}
