//! Skinny `M` (1..=16 rows, batch-1 decoding): matrix-vector-like paths that read `B` once.
//!
//! - [`skinny`], `B` row-major or prepacked. The rows of `A` are split into at most a few chunks
//!   (one on AVX-512); each chunk has a register tile as wide as its row count allows (up to 8
//!   vectors, i.e. four 32-column panels for one row), so every `B` element loaded feeds all rows
//!   of the chunk and enough independent FMA chains keep the FMA ports busy. How `B` is read:
//!   - prepacked: panel by panel, each a contiguous stream;
//!   - row-major, one row of `A`: the one-row kernel takes a few rows of `B` at a time across all
//!     columns (a few sequential streams, accumulators in registers);
//!   - row-major and small enough to stay in cache: in place, tile by tile (the last partial
//!     column group is packed into a small zero-padded buffer);
//!   - row-major and large: in place a few rows at a time for up to 4 rows of `A`
//!     (memory-bound), else copied row by row into panels in an L2-sized buffer, a K chunk at a
//!     time (reading `B` in memory order, which the hardware prefetchers follow).
//! - [`dot`]: `B` transposed (`W[N,K]`, rows contiguous in `k`): dot products of `A` rows with
//!   several `W` rows at a time, horizontally reduced at the end.
//!
//! Threads split the columns of `C` (rows of `W`).

use super::NR;
use super::driver::{self, Ctx, DArgs, KArgs, Problem, RowArgs, SyncPtr, split_range};
use super::pack::{self, PackedLayout, Scratch, Slot};

/// A `B` view for one K chunk: `(k, j)` at `ptr + k * ks + (j / NR) * ps + j % NR`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BView {
    pub ptr: *const f32,
    pub ks: usize,
    pub ps: usize,
}

/// The `B` of a skinny call.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BSrc {
    /// The caller's row-major `B`, rows `ld` apart (read only in whole groups inside `N`).
    Direct { ptr: *const f32, ld: usize },
    /// Packed panels.
    Packed { ptr: *const f32, layout: PackedLayout },
}

// SAFETY: a `B` that is only read for the duration of the call.
unsafe impl Send for BSrc {}
// SAFETY: as above.
unsafe impl Sync for BSrc {}

impl BSrc {
    /// The view of rows `pc..pc + kc` (for a packed `B`, `pc` starts a K block of `kc` rows).
    ///
    /// # Safety
    ///
    /// `pc` must be a row of `B`.
    unsafe fn view(&self, pc: usize, kc: usize) -> BView {
        match *self {
            // SAFETY: row `pc` of B.
            BSrc::Direct { ptr, ld } => BView {
                ptr: unsafe { ptr.add(pc * ld) },
                ks: ld,
                ps: NR,
            },
            // SAFETY: the start of the K block at row `pc`.
            BSrc::Packed { ptr, layout } => BView {
                ptr: unsafe { ptr.add(layout.offset(pc, 0)) },
                ks: NR,
                ps: kc * NR,
            },
        }
    }
}

/// Row chunks of a skinny problem: `(first row, rows)`, at most `SKINNY_M` of them.
fn chunks(m: usize, cap: usize) -> ([(usize, usize); driver::SKINNY_M], usize) {
    let count = m.div_ceil(cap);
    let mut out = [(0, 0); driver::SKINNY_M];
    let mut row = 0;
    for (i, slot) in out.iter_mut().take(count).enumerate() {
        let rows = m / count + usize::from(i < m % count);
        *slot = (row, rows);
        row += rows;
    }
    (out, count)
}

/// The skinny path: `C[m, n]` with `m <= SKINNY_M` from a row-major or packed `B`.
///
/// # Safety
///
/// As [`driver::run`], with `b` describing the problem's `B`.
pub(crate) unsafe fn skinny(ctx: &Ctx<'_>, nt: usize, p: &Problem, b: BSrc) {
    let isa = ctx.isa;
    let (m, k) = (p.m, p.k);
    let (chunks, count) = chunks(m, isa.skinny_cap);
    let chunks = &chunks[..count];
    // Widest tile; every chunk's width divides it (see the variants' `skinny_nv` tables).
    let gwo = chunks
        .iter()
        .map(|&(_, rows)| (isa.skinny_nv)(rows) * isa.lanes)
        .max()
        .unwrap_or(NR);
    let unit = gwo.max(NR);
    // Pack all of A once, chunk by chunk, as `[k][rows]`.
    let mut abuf = Scratch::take(Slot::A, m * k);
    let ap = SyncPtr(abuf.ptr());
    for &(row0, rows) in chunks {
        // SAFETY: rows row0..row0+rows of A, all k columns; chunk `row0` starts at `row0 * k`
        // in a buffer of `m * k` floats.
        unsafe { pack::pack_a_panel(ap.get().add(row0 * k), p.a, row0, rows, 0, k) };
    }
    let full = (0, k);
    // A B that will not stay in the caches between calls.
    let big_b = k * p.n * 4 > ctx.bl.stream_bytes;
    ctx.par(nt, &|t, nt| {
        let (n0, n1) = split_range(p.n, nt, t, unit);
        if n0 >= n1 {
            return;
        }
        match b {
            BSrc::Packed { layout, .. } => {
                // SAFETY: this thread owns columns n0..n1 of C; packed panels are zero padded.
                unsafe { skinny_cols(ctx, p, chunks, ap.get(), b, (0, 0), (n0, n1), gwo, full, layout.kcb) };
            }
            BSrc::Direct { ptr, ld } if big_b && m > ctx.bl.direct_max_m => {
                // A large B and enough rows to be compute-heavy: copy `kcs` whole rows (of this
                // thread's columns) at a time into zero-padded panels in an L2-sized buffer, then
                // run the packed tiles on it. The copy reads B in memory order, which the
                // hardware prefetchers follow; reading it in place tile by tile would jump
                // between many rows (and cache sets: rows are often a power of two apart).
                let kcs = ctx.bl.stream_kc.min(k);
                let mut bbuf = Scratch::take(Slot::B, kcs * (n1 - n0).div_ceil(NR) * NR);
                let bp = bbuf.ptr();
                let mut pc = 0;
                while pc < k {
                    let kc = kcs.min(k - pc);
                    let layout = PackedLayout::new(kc, n1 - n0, kc);
                    // SAFETY: rows pc..pc+kc, columns n0..n1 of B; the buffer holds
                    // `kcs * ceil(cols / NR) * NR >= layout.len()` floats.
                    unsafe { pack::pack_b_panels(bp, (ptr.add(pc * ld + n0), ld, 1), layout, 0, layout.panels()) };
                    let block = BSrc::Packed { ptr: bp, layout };
                    // SAFETY: this thread's columns of C; the block is read in whole panels.
                    unsafe {
                        skinny_cols(
                            ctx,
                            p,
                            chunks,
                            ap.get(),
                            block,
                            (n0, pc),
                            (n0, n1),
                            gwo,
                            (pc, pc + kc),
                            kc,
                        )
                    };
                    pc += kc;
                }
            }
            BSrc::Direct { ptr, ld } if m == 1 && isa.row.is_some() => {
                // One row: `row_kc` rows of B at a time across all of this thread's columns,
                // i.e. a few sequential streams, with the accumulators in registers.
                let kernel = isa.row.expect("checked above");
                let small = k * p.n * 4 <= ctx.bl.l2_bytes / 2;
                let kcs = if small { ctx.bl.row_kc } else { ctx.bl.row_kc_big }.min(k);
                let mut pc = 0;
                while pc < k {
                    let kc = kcs.min(k - pc);
                    let args = RowArgs {
                        kc,
                        // SAFETY: `pc < k`, inside the packed row of A (`k` floats).
                        a: unsafe { ap.get().add(pc) },
                        // SAFETY: row `pc`, column `n0` of B.
                        b: unsafe { ptr.add(pc * ld + n0) },
                        ldb: ld,
                        // SAFETY: row 0, column `n0` of C.
                        c: unsafe { p.c.at(0, n0) },
                        n: n1 - n0,
                        alpha: p.alpha,
                        beta: if pc == 0 { p.beta } else { 1.0 },
                    };
                    // SAFETY: `kc` values of A; rows pc..pc+kc of B over columns n0..n1; this
                    // thread's columns of C (initialised whenever beta != 0).
                    unsafe { kernel(&args) };
                    pc += kc;
                }
            }
            BSrc::Direct { ptr, ld } => {
                // In place. A large B (few rows, so memory-bound) is read a few rows at a time
                // across all columns, i.e. as a few sequential streams.
                let kcs = if big_b { ctx.bl.direct_kc } else { k };
                let n_direct = n0 + (n1 - n0) / gwo * gwo;
                // SAFETY: this thread owns columns n0..n1 of C; the direct B is read only in
                // whole groups inside n0..n_direct.
                unsafe { skinny_cols(ctx, p, chunks, ap.get(), b, (0, 0), (n0, n_direct), gwo, full, kcs) };
                if n_direct < n1 {
                    // Pack the last partial group into zero-padded panels (one K block).
                    let layout = PackedLayout::new(k, n1 - n_direct, k);
                    let mut tbuf = Scratch::take(Slot::Tail, layout.len());
                    let tp = tbuf.ptr();
                    // SAFETY: columns n_direct..n1 of B; the buffer holds `layout.len()` floats.
                    unsafe { pack::pack_b_panels(tp, (ptr.add(n_direct), ld, 1), layout, 0, layout.panels()) };
                    let tail = BSrc::Packed { ptr: tp, layout };
                    // SAFETY: the packed tail is read in whole zero-padded panels.
                    unsafe {
                        skinny_cols(
                            ctx,
                            p,
                            chunks,
                            ap.get(),
                            tail,
                            (n_direct, 0),
                            (n_direct, n1),
                            gwo,
                            full,
                            k,
                        )
                    };
                }
            }
        }
        // SAFETY: the block this thread wrote.
        unsafe { driver::epilogue(ctx.isa, p, 0, m, n0, n1 - n0) };
    });
}

/// Columns `cols` of `C` for every row chunk over rows `krange` of the product, in K chunks of
/// `kcs` rows (the K blocks of a packed source). Product column `j`, row `kk` is source column
/// `j - base.0`, row `kk - base.1`.
///
/// # Safety
///
/// As [`skinny`]; a direct source must not be read past `cols.1` in whole groups of `gwo`.
#[allow(clippy::too_many_arguments)]
unsafe fn skinny_cols(
    ctx: &Ctx<'_>,
    p: &Problem,
    chunks: &[(usize, usize)],
    ap: *const f32,
    b: BSrc,
    (jbase, kbase): (usize, usize),
    (j0, j1): (usize, usize),
    gwo: usize,
    (k0, k1): (usize, usize),
    kcs: usize,
) {
    let isa = ctx.isa;
    let k = p.k;
    let mut pc = k0;
    while pc < k1 {
        let kc = kcs.min(k1 - pc);
        let beta = if pc == 0 { p.beta } else { 1.0 };
        // SAFETY: `pc - kbase` is a row of the source.
        let bv = unsafe { b.view(pc - kbase, kc) };
        let mut jb = j0;
        while jb < j1 {
            let je = (jb + gwo).min(j1);
            for &(row0, rows) in chunks {
                let nv = (isa.skinny_nv)(rows);
                let full = (isa.kernel)(rows, nv);
                let mut j = jb;
                while j < je {
                    // A short last group uses one-panel tiles, so no read goes past the last
                    // (zero-padded) panel.
                    let (kernel, gw) = if je - j >= nv * isa.lanes {
                        (full, nv * isa.lanes)
                    } else {
                        let tnv = nv.min(NR / isa.lanes);
                        ((isa.kernel)(rows, tnv), tnv * isa.lanes)
                    };
                    let bj = j - jbase;
                    let args = KArgs {
                        kc,
                        // SAFETY: chunk `row0` of the packed A, from row `pc`.
                        a: unsafe { ap.add(row0 * k + pc * rows) },
                        lda: 0,
                        // SAFETY: column `bj` of the chunk's view (inside B or its panels).
                        b: unsafe { bv.ptr.add((bj / NR) * bv.ps + bj % NR) },
                        ks: bv.ks,
                        ps: bv.ps,
                        // SAFETY: inside C.
                        c: unsafe { p.c.at(row0, j) },
                        ldc: p.c.ld,
                        n_valid: gw.min(je - j),
                        alpha: p.alpha,
                        beta,
                    };
                    // SAFETY: the A chunk holds `[k][rows]`; the B group is inside the view
                    // (whole groups inside `cols` for a direct source, whole zero-padded panels
                    // otherwise); the C tile is inside this thread's columns and initialised
                    // whenever beta != 0.
                    unsafe { kernel(&args) };
                    j += gw;
                }
            }
            jb = je;
        }
        pc += kc;
    }
}

/// The skinny path for a transposed `B`: `w` is `W[n, k]` with rows `ldw` apart.
///
/// # Safety
///
/// As [`driver::run`], with `B(k, j) = w[j * ldw + k]`.
pub(crate) unsafe fn dot(ctx: &Ctx<'_>, nt: usize, p: &Problem, w: *const f32, ldw: usize) {
    let isa = ctx.isa;
    let (m, k) = (p.m, p.k);
    // The kernels read rows of A contiguously; copy A if its columns are not.
    let mut abuf = None;
    let (a, lda) = if p.a.cs == 1 {
        (p.a.ptr, p.a.rs)
    } else {
        let mut buf = Scratch::take(Slot::A, m * k);
        let dst = buf.ptr();
        for i in 0..m {
            for q in 0..k {
                // SAFETY: (i, q) is inside A; the buffer holds m * k floats.
                unsafe { *dst.add(i * k + q) = *p.a.ptr.add(i * p.a.rs + q * p.a.cs) };
            }
        }
        abuf = Some(buf);
        (dst as *const f32, k)
    };
    let a = SyncPtr(a as *mut f32);
    let w = SyncPtr(w as *mut f32);
    let (chunks, count) = chunks(m, isa.dot_cap);
    let chunks = &chunks[..count];
    let ro = chunks.iter().map(|&(_, rows)| (isa.dot_r)(rows)).max().unwrap_or(1);
    ctx.par(nt, &|t, nt| {
        let (n0, n1) = split_range(p.n, nt, t, 8);
        let mut nb = n0;
        while nb < n1 {
            let ne = (nb + ro).min(n1);
            for &(row0, rows) in chunks {
                let r = (isa.dot_r)(rows);
                let mut j = nb;
                while j < ne {
                    let (kernel, step) = if ne - j >= r {
                        ((isa.dot)(rows, r), r)
                    } else {
                        ((isa.dot)(rows, 1), 1)
                    };
                    let args = DArgs {
                        k,
                        // SAFETY: row `row0` of A (or of its contiguous copy).
                        a: unsafe { a.get().add(row0 * lda) },
                        lda,
                        // SAFETY: row `j < n` of W.
                        w: unsafe { w.get().add(j * ldw) },
                        ldw,
                        // SAFETY: inside C.
                        c: unsafe { p.c.at(row0, j) },
                        ldc: p.c.ld,
                        alpha: p.alpha,
                        beta: p.beta,
                    };
                    // SAFETY: rows row0..row0+rows of A and j..j+step of W have k floats; the C
                    // block is inside this thread's columns, initialised whenever beta != 0.
                    unsafe { kernel(&args) };
                    j += step;
                }
            }
            nb = ne;
        }
        // SAFETY: the block this thread wrote.
        unsafe { driver::epilogue(isa, p, 0, m, n0, n1 - n0) };
    });
    drop(abuf);
}
