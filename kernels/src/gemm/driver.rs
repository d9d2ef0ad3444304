//! The GEMM driver: cache blocking, the split over threads, and the loops around the
//! micro-kernels.
//!
//! Blocked path (`M > SKINNY_M`), per thread rectangle of `C`:
//!
//! ```text
//! for pc in K by KC:                      (the K blocks of a packed B)
//!   for ic in M by MC:  pack A[ic.., pc..] into MR-row micro-panels (MC x KC, in L3)
//!     for jc in N by NC:  pack B[pc.., jc..] into NR-column panels (KC x NC, in L2), unless B
//!                         is prepacked (then the block is read in place) or small enough to be
//!                         read unpacked
//!       for ir in MC by MR:               A micro-panel (MR x KC) stays in L1
//!         for jr in NC by the tile width: micro-kernel, B panel streamed from L2
//!         (last pc) epilogue on the MR x NC block just written
//! ```
//!
//! Threads get rectangles of `C` from a grid of `M` and `N` parts ([`grid`]); each packs its own
//! blocks, so no thread waits for another. Skinny `M` goes to [`gemv`](super::gemv).

use std::sync::OnceLock;

use super::epilogue::RawEpi;
use super::pack::{self, PackedLayout, Scratch, Slot};
use super::{KernelVariant, MatRef, NR, gemv};
use crate::threadpool::ThreadPool;

/// Rows up to which the skinny (matrix-vector like) paths are used; they read a row-major or
/// transposed `B` in place, so only longer products pack `B` (per call, unless prepacked).
pub const SKINNY_M: usize = 16;

/// Below this many flops per thread, fewer threads are used (tests split even tiny problems, so
/// that the threaded paths see every odd shape).
const MIN_FLOPS_PER_THREAD: usize = if cfg!(test) { 1 } else { 1 << 18 };

/// Arguments of a micro-kernel call; see the kernels' safety contracts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KArgs {
    /// Reduction length.
    pub kc: usize,
    /// Packed `A` micro-panel, `[kc][rows]` (or, for the kernels that read `A` in place, its
    /// first row, with rows `lda` apart).
    pub a: *const f32,
    pub lda: usize,
    /// `B` group: element `(k, j)` at `b + k * ks + (j / NR) * ps + j % NR`.
    pub b: *const f32,
    pub ks: usize,
    pub ps: usize,
    /// Output tile, row stride `ldc`.
    pub c: *mut f32,
    pub ldc: usize,
    /// Columns of the tile that exist (the rest of the group is computed and dropped).
    pub n_valid: usize,
    pub alpha: f32,
    /// 0 (overwrite, `C` not read) or the factor of the old `C`.
    pub beta: f32,
}

pub(crate) type KernelFn = unsafe fn(&KArgs);

/// Arguments of a dot-product kernel (skinny `M`, transposed `B`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct DArgs {
    pub k: usize,
    pub a: *const f32,
    pub lda: usize,
    pub w: *const f32,
    pub ldw: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
}

pub(crate) type DotFn = unsafe fn(&DArgs);

pub(crate) type EpiFn = unsafe fn(&RawEpi, *mut f32, usize, usize, usize, usize, usize);

/// Arguments of a one-row kernel over a row-major `B` (`M = 1`): `c[j] = alpha * sum over
/// r < kc of a[r] * b[r * ldb + j] + beta * c[j]` for `j < n`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowArgs {
    pub kc: usize,
    pub a: *const f32,
    pub b: *const f32,
    pub ldb: usize,
    pub c: *mut f32,
    pub n: usize,
    pub alpha: f32,
    pub beta: f32,
}

pub(crate) type RowFn = unsafe fn(&RowArgs);

/// One kernel variant: its tile shapes and functions.
pub(crate) struct Isa {
    pub variant: KernelVariant,
    /// Floats per vector register.
    pub lanes: usize,
    /// Rows of the blocked path's tile.
    pub mr: usize,
    /// Vectors per row of the blocked path's tile.
    pub nv: usize,
    /// The kernel for a `rows x (nv * lanes)` tile.
    pub kernel: fn(usize, usize) -> KernelFn,
    /// The blocked path's kernel (`nv` vectors) for `rows`, reading a row-major `A` in place.
    pub kernel_da: fn(usize) -> KernelFn,
    /// Most rows in one skinny tile.
    pub skinny_cap: usize,
    /// Vectors per row of a skinny tile of so many rows.
    pub skinny_nv: fn(usize) -> usize,
    /// Most rows in one dot-product tile.
    pub dot_cap: usize,
    /// `B` columns per dot-product tile of so many rows.
    pub dot_r: fn(usize) -> usize,
    /// The dot-product kernel for `rows x r`.
    pub dot: fn(usize, usize) -> DotFn,
    /// The one-row kernel over a row-major `B`, if the variant has one.
    pub row: Option<RowFn>,
    pub epilogue: EpiFn,
}

/// Cache blocking parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blocking {
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
    /// Bytes of a row-major `B` above which the skinny path treats it as streamed from memory
    /// (about a quarter of L3).
    pub stream_bytes: usize,
    /// For such a `B`, rows `M` up to which it is read in place, `direct_kc` rows at a time
    /// (memory-bound: a few sequential streams); more rows copy it into panels `stream_kc` rows
    /// at a time first.
    pub direct_max_m: usize,
    pub direct_kc: usize,
    pub stream_kc: usize,
    /// Rows of `B` per call of the one-row kernel (`M = 1`, row-major `B`): `row_kc` when `B`
    /// fits in half of L2, else `row_kc_big` (fewer concurrent streams from memory).
    pub row_kc: usize,
    pub row_kc_big: usize,
    pub l2_bytes: usize,
    /// Largest row-major `B` (bytes) that the blocked path reads in place, unpacked.
    pub direct_bytes: usize,
    /// Largest row-major `A` (bytes) that the blocked path reads in place, unpacked (no limit by
    /// default).
    pub direct_a_bytes: usize,
}

/// L1d, L2 and L3 sizes in bytes (per core where sysfs says so), from Linux sysfs or defaults.
pub(crate) fn cache_sizes() -> (usize, usize, usize) {
    static SIZES: OnceLock<(usize, usize, usize)> = OnceLock::new();
    *SIZES.get_or_init(|| {
        let mut sizes = (32 << 10, 1 << 20, 8 << 20);
        for index in 0..8 {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
            let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
            let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size")) else {
                continue;
            };
            let size = size.trim();
            let bytes = if let Some(k) = size.strip_suffix('K') {
                k.parse::<usize>().ok().map(|k| k << 10)
            } else if let Some(m) = size.strip_suffix('M') {
                m.parse::<usize>().ok().map(|m| m << 20)
            } else {
                size.parse::<usize>().ok()
            };
            let Some(bytes) = bytes.filter(|&b| b > 0) else {
                continue;
            };
            match (level.trim(), kind.trim()) {
                ("1", "Data") => sizes.0 = bytes,
                ("2", "Unified") | ("2", "Data") => sizes.1 = bytes,
                ("3", "Unified") => sizes.2 = bytes,
                _ => {}
            }
        }
        sizes
    })
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&v| v > 0)
}

fn round_down(x: usize, unit: usize) -> usize {
    (x / unit * unit).max(unit)
}

/// Blocking for a variant: `KC` so the `MR x KC` micro-panel of `A` takes about half of L1,
/// `NC` so the `KC x NC` block of `B` takes about half of L2, `MC` so the packed `A` block takes
/// about a quarter of L3 (it is streamed from there, one micro-panel per pass over the `B`
/// block; a large `MC` means each `B` block is packed about once). The `MLC_GEMM_*` environment
/// variables named in the code override them (for tuning only).
pub(crate) fn blocking(isa: &Isa) -> Blocking {
    static CACHE: [OnceLock<Blocking>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    *CACHE[isa.variant as usize].get_or_init(|| {
        let (l1, l2, l3) = cache_sizes();
        let gw = isa.nv * isa.lanes;
        let kc = env_usize("MLC_GEMM_KC").unwrap_or_else(|| round_down(l1 / 2 / (isa.mr * 4), 16).clamp(64, 1024));
        let nc = env_usize("MLC_GEMM_NC").unwrap_or_else(|| round_down(l2 / 2 / (kc * 4), NR).clamp(NR, 4096));
        let mc =
            env_usize("MLC_GEMM_MC").unwrap_or_else(|| round_down(l3 / 4 / (kc * 4), isa.mr).clamp(isa.mr * 8, 4096));
        Blocking {
            kc,
            mc: round_down(mc, isa.mr),
            nc: round_down(nc, NR.max(gw)),
            stream_bytes: env_usize("MLC_GEMM_STREAM_BYTES").unwrap_or(l3 / 4),
            direct_max_m: env_usize("MLC_GEMM_DIRECT_MAX_M").unwrap_or(4),
            direct_kc: env_usize("MLC_GEMM_DIRECT_KC").unwrap_or(8),
            stream_kc: env_usize("MLC_GEMM_STREAM_KC").unwrap_or(64),
            row_kc: env_usize("MLC_GEMM_ROW_KC").unwrap_or(32),
            row_kc_big: env_usize("MLC_GEMM_ROW_KC_BIG").unwrap_or(8),
            l2_bytes: l2,
            direct_bytes: env_usize("MLC_GEMM_DIRECT_BYTES").unwrap_or(l2 / 4),
            direct_a_bytes: env_usize("MLC_GEMM_DIRECT_A_BYTES").unwrap_or(usize::MAX),
        }
    })
}

/// `A` as raw parts: `(i, k)` at `ptr + i * rs + k * cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawA {
    pub ptr: *const f32,
    pub rs: usize,
    pub cs: usize,
}

impl RawA {
    pub(crate) fn of(a: &MatRef<'_>) -> Self {
        RawA {
            ptr: a.data().as_ptr(),
            rs: a.row_stride(),
            cs: a.col_stride(),
        }
    }
}

/// `B` as raw parts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawB {
    /// Packed panels (see [`PackedLayout`]).
    Packed { ptr: *const f32, layout: PackedLayout },
    /// `(k, j)` at `ptr + k * rs + j * cs`.
    Strided { ptr: *const f32, rs: usize, cs: usize },
}

/// `C` as raw parts: `(i, j)` at `ptr + i * ld + j`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawC {
    pub ptr: *mut f32,
    pub ld: usize,
}

impl RawC {
    /// # Safety
    ///
    /// `(i, j)` must be inside the output.
    pub(crate) unsafe fn at(&self, i: usize, j: usize) -> *mut f32 {
        // SAFETY: inside the output by the caller's contract.
        unsafe { self.ptr.add(i * self.ld + j) }
    }
}

/// One GEMM: `C[m,n] = alpha * A[m,k] @ B[k,n] + beta * C`, then the epilogue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Problem {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: RawA,
    pub b: RawB,
    pub c: RawC,
    pub alpha: f32,
    pub beta: f32,
    pub epi: RawEpi,
}

// SAFETY: a `Problem` is a set of borrowed views that outlive the call in which it is used; the
// threads of one call read A, B and the epilogue inputs (shared borrows) and write disjoint
// rectangles of C (the split functions below never hand the same element to two threads).
unsafe impl Send for Problem {}
// SAFETY: as above.
unsafe impl Sync for Problem {}

/// A raw pointer that may cross to the pool's threads (each use says why that is sound).
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr(pub *mut f32);
// SAFETY: only used for buffers whose accesses are split between threads without overlap, or
// that are only read while shared.
unsafe impl Send for SyncPtr {}
// SAFETY: as above.
unsafe impl Sync for SyncPtr {}

impl SyncPtr {
    /// The pointer (a method, so that closures capture the whole `SyncPtr`, not the raw field).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Where and how a call runs.
pub(crate) struct Ctx<'p> {
    pub pool: &'p ThreadPool,
    pub threads: usize,
    pub isa: &'static Isa,
    pub bl: Blocking,
}

impl<'p> Ctx<'p> {
    pub(crate) fn new(pool: &'p ThreadPool, variant: Option<KernelVariant>) -> Self {
        let isa = variant.unwrap_or_else(KernelVariant::detect).isa();
        Ctx {
            pool,
            threads: pool.num_threads(),
            isa,
            bl: blocking(isa),
        }
    }

    /// The same context on the calling thread alone.
    pub(crate) fn serial(&self) -> Ctx<'p> {
        Ctx {
            pool: self.pool,
            threads: 1,
            isa: self.isa,
            bl: self.bl,
        }
    }

    /// Runs `f(index, count)` on up to `nt` threads.
    pub(crate) fn par(&self, nt: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        if nt <= 1 { f(0, 1) } else { self.pool.run(nt, f) }
    }
}

/// Part `idx` of `parts` of `0..len`, in whole `unit`s (the last part may end mid-unit at `len`).
pub(crate) fn split_range(len: usize, parts: usize, idx: usize, unit: usize) -> (usize, usize) {
    let units = len.div_ceil(unit);
    let (per, extra) = (units / parts, units % parts);
    let start = idx * per + idx.min(extra);
    let end = start + per + usize::from(idx < extra);
    ((start * unit).min(len), (end * unit).min(len))
}

/// Splits `nt` threads into a `tm x tn` grid over an `m x n` output in units of `mu x nu`,
/// minimising the largest padded tile (ties go to more `N` parts).
fn grid(nt: usize, m: usize, n: usize, mu: usize, nu: usize) -> (usize, usize) {
    let (mut best, mut best_cost) = ((1, nt), usize::MAX);
    for tm in (1..=nt).filter(|tm| nt.is_multiple_of(*tm)) {
        let tn = nt / tm;
        let cost = m.div_ceil(mu).div_ceil(tm) * mu * n.div_ceil(nu).div_ceil(tn) * nu;
        if cost < best_cost || (cost == best_cost && tn > best.1) {
            (best, best_cost) = ((tm, tn), cost);
        }
    }
    best
}

/// Threads worth using for `flops`, given `units` independent pieces of work.
pub(crate) fn useful_threads(ctx: &Ctx<'_>, flops: usize, units: usize) -> usize {
    ctx.threads.min((flops / MIN_FLOPS_PER_THREAD).max(1)).min(units.max(1))
}

/// Runs a GEMM.
///
/// # Safety
///
/// `p` must describe valid views: `A` readable as `m x k`, `B` readable as `k x n` (a packed `B`
/// with `ceil(n / NR)` panels of `k * NR` floats), `C` writable (and initialised if `beta != 0`)
/// as `m x n` with no overlap with the inputs, bias and residual readable as in [`RawEpi`]; all
/// of it alive and not written by anyone else for the duration of the call.
pub(crate) unsafe fn run(ctx: &Ctx<'_>, p: &Problem) {
    let (m, n, k) = (p.m, p.n, p.k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // SAFETY: forwarded contract.
        unsafe { scale_c(ctx.isa, p, 0, m, 0, n) };
        return;
    }
    let flops = 2 * m * n * k;
    match p.b {
        RawB::Packed { ptr, layout } => {
            if m <= SKINNY_M {
                let nt = useful_threads(ctx, flops, n.div_ceil(NR));
                // SAFETY: forwarded contract; a packed B is read in whole panels, zero padded.
                unsafe { gemv::skinny(ctx, nt, p, gemv::BSrc::Packed { ptr, layout }) };
            } else {
                let nt = useful_threads(ctx, flops, m.div_ceil(ctx.isa.mr) * n.div_ceil(NR));
                // SAFETY: forwarded contract.
                unsafe { blocked(ctx, nt, p) };
            }
        }
        RawB::Strided { ptr, rs, cs } => {
            if m <= SKINNY_M && cs == 1 {
                let nt = useful_threads(ctx, flops, n.div_ceil(NR));
                // SAFETY: forwarded contract; the direct view is read only over whole groups
                // inside `n` (the tail is packed), see `gemv::skinny`.
                unsafe { gemv::skinny(ctx, nt, p, gemv::BSrc::Direct { ptr, ld: rs }) };
            } else if m <= SKINNY_M && rs == 1 {
                let nt = useful_threads(ctx, flops, n.div_ceil(8));
                // SAFETY: forwarded contract.
                unsafe { gemv::dot(ctx, nt, p, ptr, cs) };
            } else {
                let nt = useful_threads(ctx, flops, m.div_ceil(ctx.isa.mr) * n.div_ceil(NR));
                // SAFETY: forwarded contract.
                unsafe { blocked(ctx, nt, p) };
            }
        }
    }
}

/// `C = beta * C` (a `k == 0` product) followed by the epilogue, on rows `m0..m1`, columns
/// `n0..n1`.
///
/// # Safety
///
/// As [`run`].
pub(crate) unsafe fn scale_c(isa: &Isa, p: &Problem, m0: usize, m1: usize, n0: usize, n1: usize) {
    for i in m0..m1 {
        for j in n0..n1 {
            // SAFETY: inside C.
            unsafe {
                let cp = p.c.at(i, j);
                *cp = if p.beta == 0.0 { 0.0 } else { p.beta * *cp };
            }
        }
    }
    // SAFETY: forwarded contract.
    unsafe { epilogue(isa, p, m0, m1 - m0, n0, n1 - n0) };
}

/// Applies the problem's epilogue to `rows` rows from `row0`, `len` columns from `col0`.
///
/// # Safety
///
/// As [`run`], for that block of `C`.
#[inline]
pub(crate) unsafe fn epilogue(isa: &Isa, p: &Problem, row0: usize, rows: usize, col0: usize, len: usize) {
    if p.epi.is_identity() || rows == 0 || len == 0 {
        return;
    }
    // SAFETY: the block is inside C; bias and residual cover C (checked by `Epilogue::raw`).
    unsafe { (isa.epilogue)(&p.epi, p.c.at(row0, col0), p.c.ld, row0, rows, col0, len) }
}

/// The blocked path on `nt` threads.
///
/// # Safety
///
/// As [`run`].
unsafe fn blocked(ctx: &Ctx<'_>, nt: usize, p: &Problem) {
    let isa = ctx.isa;
    let bl = ctx.bl;
    ctx.par(nt, &|t, nt| {
        let (tm, tn) = grid(nt, p.m, p.n, isa.mr, NR);
        let (m0, m1) = split_range(p.m, tm, t / tn, isa.mr);
        let (n0, n1) = split_range(p.n, tn, t % tn, NR);
        if m0 < m1 && n0 < n1 {
            // SAFETY: the thread grid hands disjoint rectangles of C to the threads; A and B are
            // only read.
            unsafe { blocked_rect(isa, &bl, p, (m0, m1), (n0, n1)) };
        }
    });
}

/// The blocked loops over the rectangle `rows x cols` of `C` (`cols.0` a multiple of `NR`).
///
/// A strided `B` is packed block by block (`KC x NC`, into an L2-sized buffer of this thread)
/// right before the block is used; a packed `B` is read in place (its K blocks set `KC`).
///
/// # Safety
///
/// As [`run`], and no other thread touches this rectangle of C.
unsafe fn blocked_rect(isa: &Isa, bl: &Blocking, p: &Problem, (m0, m1): (usize, usize), (n0, n1): (usize, usize)) {
    let (mr, gw) = (isa.mr, isa.nv * isa.lanes);
    let kc_max = match p.b {
        RawB::Packed { layout, .. } => layout.kcb,
        RawB::Strided { .. } => bl.kc,
    }
    .min(p.k);
    let mc_max = bl.mc.min(m1 - m0);
    let nc_max = bl.nc.min((n1 - n0).div_ceil(NR) * NR);
    // A row-major A is read in place by the kernels: packing it costs about 32 / N of the
    // product (a scalar transpose), more than the in-place reads lose. Rows a multiple of 4 KiB
    // apart would all fall into the same L1 sets, so such an A is packed.
    let direct_a = p.a.cs == 1 && p.m * p.k * 4 <= bl.direct_a_bytes && !(p.a.rs * 4).is_multiple_of(4096);
    let mut abuf = Scratch::take(Slot::A, if direct_a { 0 } else { mc_max * kc_max });
    let ap = abuf.ptr();
    // A small row-major B whose column groups all lie inside N is read in place (packing it
    // would cost as much as the product); otherwise it is packed block by block.
    let direct = match p.b {
        RawB::Strided { rs, cs, .. } => {
            cs == 1 && p.n.is_multiple_of(gw) && p.k * p.n * 4 <= bl.direct_bytes && !(rs * 4).is_multiple_of(4096)
        }
        RawB::Packed { .. } => false,
    };
    let mut bbuf = match p.b {
        RawB::Strided { .. } if !direct => Some(Scratch::take(Slot::B, kc_max * nc_max)),
        _ => None,
    };
    let main_kernel = (isa.kernel)(mr, isa.nv);
    let mut pc = 0;
    while pc < p.k {
        let kc = kc_max.min(p.k - pc);
        let beta = if pc == 0 { p.beta } else { 1.0 };
        let last = pc + kc == p.k;
        let mut ic = m0;
        while ic < m1 {
            let mc = mc_max.min(m1 - ic);
            if !direct_a {
                // SAFETY: rows ic..ic+mc, columns pc..pc+kc are inside A; the buffer holds
                // `mc_max * kc_max >= mc * kc` floats.
                unsafe { pack::pack_a(ap, p.a, ic, mc, pc, kc, mr) };
            }
            let mut jc = n0;
            while jc < n1 {
                let nc = bl.nc.min(n1 - jc);
                // The KC x NC block of B as `(start, ks, ps)`: element `(k, j)` of the block at
                // `start + k * ks + (j / NR) * ps + j % NR`.
                let (bblock, ks, ps) = match (p.b, bbuf.as_mut()) {
                    // SAFETY: `(pc, jc)` is inside B: row pc starts a K block, jc a panel.
                    (RawB::Packed { ptr, layout }, _) => (unsafe { ptr.add(layout.offset(pc, jc)) }, NR, kc * NR),
                    (RawB::Strided { ptr, rs, cs }, Some(buf)) => {
                        let layout = PackedLayout::new(kc, nc, kc);
                        // SAFETY: rows pc..pc+kc, columns jc..jc+nc are inside B; the buffer
                        // holds `kc_max * nc_max >= layout.len()` floats.
                        unsafe {
                            pack::pack_b_panels(
                                buf.ptr(),
                                (ptr.add(pc * rs + jc * cs), rs, cs),
                                layout,
                                0,
                                layout.panels(),
                            )
                        };
                        (buf.ptr() as *const f32, NR, kc * NR)
                    }
                    // SAFETY: `(pc, jc)` is inside B.
                    (RawB::Strided { ptr, rs, .. }, None) => (unsafe { ptr.add(pc * rs + jc) }, rs, NR),
                };
                let mut ir = 0;
                while ir < mc {
                    let rows = mr.min(mc - ir);
                    let kernel = match (direct_a, rows == mr) {
                        (false, true) => main_kernel,
                        (false, false) => (isa.kernel)(rows, isa.nv),
                        (true, _) => (isa.kernel_da)(rows),
                    };
                    let (a, lda) = if direct_a {
                        // SAFETY: row `ic + ir`, column `pc` of A.
                        (unsafe { p.a.ptr.add((ic + ir) * p.a.rs + pc) }, p.a.rs)
                    } else {
                        // SAFETY: micro-panel `ir / mr` of the packed block.
                        (unsafe { ap.add(ir * kc) } as *const f32, 0)
                    };
                    let mut jr = jc;
                    while jr < jc + nc {
                        let args = KArgs {
                            kc,
                            a,
                            lda,
                            // SAFETY: column `jr - jc` of the block (a packed panel exists since
                            // jr < n; a direct group lies inside n); `jr % NR` is a multiple of
                            // the tile width.
                            b: unsafe { bblock.add((jr - jc) / NR * ps + (jr - jc) % NR) },
                            ks,
                            ps,
                            // SAFETY: `(ic + ir, jr)` is inside this thread's rectangle.
                            c: unsafe { p.c.at(ic + ir, jr) },
                            ldc: p.c.ld,
                            n_valid: gw.min(jc + nc - jr),
                            alpha: p.alpha,
                            beta,
                        };
                        // SAFETY: A micro-panel `[kc][rows]`; B rows of a zero-padded panel
                        // (reads past `n` stay inside the panel); the C tile is inside the
                        // rectangle (n_valid columns), initialised whenever beta != 0 (the
                        // caller's C for the first block, our own writes after).
                        unsafe { kernel(&args) };
                        jr += gw;
                    }
                    if last {
                        // SAFETY: the block just written, inside the rectangle.
                        unsafe { epilogue(isa, p, ic + ir, rows, jc, nc) };
                    }
                    ir += rows;
                }
                jc += nc;
            }
            ic += mc;
        }
        pc += kc;
    }
}
