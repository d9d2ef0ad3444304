//! Scaled dot-product attention that never materialises the score matrix (flash-attention style).
//!
//! `out = softmax(q @ k^T * scale + masks) @ v`, per batch and head, on `f32` tensors given as
//! 4-D views with explicit element strides ([`Tensor4Ref`], [`Tensor4Mut`]), so callers can pass
//! the `[B, T, H, dh]` layout of a projection as `[B, H, T, dh]` without copying:
//!
//! - `q [B, H, Tq, dh]`, `k [B, Hkv, Tk, dh]`, `v [B, Hkv, Tk, dv]`, `out [B, H, Tq, dv]`;
//!   `Hkv` divides `H` (grouped-query attention: query head `h` uses key/value head
//!   `h / (H / Hkv)`); nothing assumes `Tq == Tk` (cross-attention, KV caches).
//! - Masks ([`AttentionOpts`]): `causal` (query `i` sees keys `j <= i + (Tk - Tq)`, the last query
//!   aligned with the last key), a key padding mask `[B, Tk]` (true = real key), a boolean mask
//!   (true = may attend) and an additive mask, both `[B, H, Tq, Tk]` with strides (0 to
//!   broadcast). The semantics are those of `std.attention.attention` in the DSL, including a
//!   query row whose keys are all hidden: its output is 0, not NaN.
//!
//! How it runs: each task is one `(batch, head, block of BQ queries)`. It walks the visible key
//! blocks (BK keys; causal tasks stop at their last visible key, and fully padded key blocks are
//! skipped) keeping, per query row, the running maximum, the running sum of exponentials and an
//! output accumulator (the online softmax); each key block costs a `BQ x BK` score tile, never the
//! `[Tq, Tk]` matrix, so memory is `O(BQ * BK + (BQ + BK) * (dh + dv))` per thread. Scores and the
//! weighted sums of values use 4x16 register tiles (AVX2+FMA, detected at run time and cached, or
//! a portable fallback) with a vectorised `exp`. Tasks are spread over a [`ThreadPool`] and taken
//! dynamically, heaviest first; each task's arithmetic does not depend on which thread runs it, so
//! any thread count gives the same bits.
//!
//! ```
//! use mlc_kernels::ThreadPool;
//! use mlc_kernels::attention::{AttentionOpts, Tensor4Mut, Tensor4Ref, attention};
//!
//! let (b, h, t, dh) = (1, 2, 5, 4);
//! let q = vec![0.5f32; b * h * t * dh];
//! let k = q.clone();
//! let v: Vec<f32> = (0..b * h * t * dh).map(|i| i as f32).collect();
//! let mut out = vec![0.0f32; b * h * t * dh];
//! let opts = AttentionOpts {
//!     causal: true,
//!     ..AttentionOpts::new(AttentionOpts::default_scale(dh))
//! };
//! attention(
//!     ThreadPool::global(),
//!     0,
//!     Tensor4Ref::new(&q, [b, h, t, dh]),
//!     Tensor4Ref::new(&k, [b, h, t, dh]),
//!     Tensor4Ref::new(&v, [b, h, t, dh]),
//!     Tensor4Mut::new(&mut out, [b, h, t, dh]),
//!     &opts,
//! );
//! // The first query sees only the first key.
//! assert_eq!(&out[..dh], &v[..dh]);
//! ```

#[cfg(target_arch = "x86_64")]
mod avx2;
mod block;
mod portable;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::softmax::RowOps;
use crate::threadpool::ThreadPool;

use block::{Problem, Scratch};

/// Queries per task (a multiple of the 4-row register tile).
pub const BQ: usize = 64;
/// Keys per block of the online softmax (a multiple of the 16-column register tile).
pub const BK: usize = 64;
/// Rows (queries) of a register tile.
const MR: usize = 4;
/// Columns (keys, or value features) of a register tile.
const NC: usize = 16;

/// A read-only 4-D view: element `[i0, i1, i2, i3]` is `data[i0 * s0 + i1 * s1 + i2 * s2 + i3 * s3]`
/// with `[s0, s1, s2, s3]` the strides (any, 0 included).
#[derive(Clone, Copy, Debug)]
pub struct Tensor4Ref<'a> {
    data: &'a [f32],
    dims: [usize; 4],
    strides: [usize; 4],
}

/// A mutable 4-D view; its elements must not overlap (checked), so that tasks can write disjoint
/// parts of it from several threads.
#[derive(Debug)]
pub struct Tensor4Mut<'a> {
    data: &'a mut [f32],
    dims: [usize; 4],
    strides: [usize; 4],
}

/// Row-major strides of a tensor with these dims.
pub fn contiguous_strides(dims: [usize; 4]) -> [usize; 4] {
    [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1]
}

/// The number of elements a view spans: the largest offset plus one (0 if it is empty).
fn span(dims: [usize; 4], strides: [usize; 4]) -> usize {
    if dims.contains(&0) {
        return 0;
    }
    dims.iter().zip(&strides).map(|(&n, &s)| (n - 1) * s).sum::<usize>() + 1
}

/// Whether distinct indices of a view always have distinct offsets (a sufficient test: sorted by
/// stride, every stride reaches past everything the smaller ones span).
fn is_non_overlapping(dims: [usize; 4], strides: [usize; 4]) -> bool {
    if dims.contains(&0) {
        return true;
    }
    let mut axes: Vec<(usize, usize)> = dims
        .iter()
        .zip(&strides)
        .filter(|&(&n, _)| n > 1)
        .map(|(&n, &s)| (s, n))
        .collect();
    axes.sort_unstable();
    let mut reach = 1; // the largest offset of the axes so far, plus one
    for (s, n) in axes {
        if s < reach {
            return false;
        }
        reach += (n - 1) * s;
    }
    true
}

impl<'a> Tensor4Ref<'a> {
    /// A row-major (contiguous) tensor.
    ///
    /// # Panics
    ///
    /// If `data` is too short.
    pub fn new(data: &'a [f32], dims: [usize; 4]) -> Self {
        Self::from_strides(data, dims, contiguous_strides(dims))
    }

    /// A view with arbitrary strides.
    ///
    /// # Panics
    ///
    /// If `data` is too short for the view.
    pub fn from_strides(data: &'a [f32], dims: [usize; 4], strides: [usize; 4]) -> Self {
        let need = span(dims, strides);
        assert!(
            data.len() >= need,
            "tensor view {dims:?} with strides {strides:?} needs {need} elements, the slice has {}",
            data.len()
        );
        Tensor4Ref { data, dims, strides }
    }

    /// The dims.
    pub fn dims(&self) -> [usize; 4] {
        self.dims
    }

    /// The strides, in elements.
    pub fn strides(&self) -> [usize; 4] {
        self.strides
    }

    fn offset(&self, i0: usize, i1: usize, i2: usize, i3: usize) -> usize {
        i0 * self.strides[0] + i1 * self.strides[1] + i2 * self.strides[2] + i3 * self.strides[3]
    }
}

impl<'a> Tensor4Mut<'a> {
    /// A row-major (contiguous) tensor.
    ///
    /// # Panics
    ///
    /// If `data` is too short.
    pub fn new(data: &'a mut [f32], dims: [usize; 4]) -> Self {
        Self::from_strides(data, dims, contiguous_strides(dims))
    }

    /// A view with arbitrary strides whose elements do not overlap.
    ///
    /// # Panics
    ///
    /// If `data` is too short for the view, or two elements of the view could share an offset.
    pub fn from_strides(data: &'a mut [f32], dims: [usize; 4], strides: [usize; 4]) -> Self {
        let need = span(dims, strides);
        assert!(
            data.len() >= need,
            "output view {dims:?} with strides {strides:?} needs {need} elements, the slice has {}",
            data.len()
        );
        assert!(
            is_non_overlapping(dims, strides),
            "output view {dims:?} with strides {strides:?} has overlapping elements"
        );
        Tensor4Mut { data, dims, strides }
    }

    /// The dims.
    pub fn dims(&self) -> [usize; 4] {
        self.dims
    }

    /// The strides, in elements.
    pub fn strides(&self) -> [usize; 4] {
        self.strides
    }
}

/// A mask over `[B, H, Tq, Tk]` given by its strides: element `[b, h, i, j]` is
/// `data[b * s0 + h * s1 + i * s2 + j * s3]`. A stride of 0 broadcasts that axis (a `[Tq, Tk]`
/// mask shared by every batch and head is [`MaskRef::shared`]).
#[derive(Clone, Copy, Debug)]
pub struct MaskRef<'a, T> {
    /// The elements.
    pub data: &'a [T],
    /// Element strides of the batch, head, query and key axes.
    pub strides: [usize; 4],
}

impl<'a, T> MaskRef<'a, T> {
    /// A mask with these strides (checked against the problem's dims when used).
    pub fn new(data: &'a [T], strides: [usize; 4]) -> Self {
        MaskRef { data, strides }
    }

    /// A row-major `[Tq, Tk]` mask (rows `ld` apart) shared by every batch and head.
    pub fn shared(data: &'a [T], ld: usize) -> Self {
        MaskRef {
            data,
            strides: [0, 0, ld, 1],
        }
    }

    fn offset(&self, b: usize, h: usize, i: usize) -> usize {
        b * self.strides[0] + h * self.strides[1] + i * self.strides[2]
    }
}

/// The kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttentionVariant {
    /// 256-bit kernels (`avx2` + `fma`) with a vectorised `exp`.
    Avx2Fma,
    /// Plain Rust (the only variant off x86-64).
    Portable,
}

impl AttentionVariant {
    /// The best variant this CPU supports, detected once and cached.
    pub fn detect() -> AttentionVariant {
        static CHOICE: OnceLock<AttentionVariant> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            if AttentionVariant::Avx2Fma.is_supported() {
                AttentionVariant::Avx2Fma
            } else {
                AttentionVariant::Portable
            }
        })
    }

    /// Whether this CPU can run the variant.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            AttentionVariant::Avx2Fma => crate::x86::has_avx2_fma(),
            #[cfg(not(target_arch = "x86_64"))]
            AttentionVariant::Avx2Fma => false,
            AttentionVariant::Portable => true,
        }
    }

    fn isa(self) -> &'static Isa {
        assert!(
            self.is_supported(),
            "attention variant {self:?} is not supported by this CPU"
        );
        match self {
            #[cfg(target_arch = "x86_64")]
            AttentionVariant::Avx2Fma => &avx2::ISA,
            #[cfg(not(target_arch = "x86_64"))]
            AttentionVariant::Avx2Fma => unreachable!(),
            AttentionVariant::Portable => &portable::ISA,
        }
    }
}

/// The inner kernels of one variant. Tiles are `MR` rows; score and probability rows are `BK`
/// apart, accumulator and value rows `dvp` apart (`dv` rounded up to `NC`).
pub(crate) struct Isa {
    /// `scores(q, dh, kt, cols, s)`: `s[r][c] = sum_d q[r * dh + d] * kt[d * BK + c]` for the `MR`
    /// rows and the first `cols` (a multiple of `NC`) columns.
    scores: fn(&[f32], usize, &[f32], usize, &mut [f32]),
    /// `pv(p, nk, v, dvp, o)`: `o[r][c] += sum_{j < nk} p[r * BK + j] * v[j * dvp + c]` for the
    /// `MR` rows and `dvp` (a multiple of `NC`) columns.
    pv: fn(&[f32], usize, &[f32], usize, &mut [f32]),
    /// The row maximum, `exp` and scaling of the online softmax (shared with
    /// [`crate::softmax`]).
    rows: &'static RowOps,
    /// `transpose_keys(k, ld, nk, dh, kt)`: `kt[d * BK + j] = k[j * ld + d]` for `j < nk`,
    /// `d < dh` (a key block, rows `ld` apart, into the transposed layout the scores read).
    transpose_keys: fn(&[f32], usize, usize, usize, &mut [f32]),
}

/// The scale, the masks and the kernel choice of an [`attention`] call.
#[derive(Clone, Copy, Debug)]
pub struct AttentionOpts<'a> {
    /// Multiplies `q @ k^T` (the usual value is [`AttentionOpts::default_scale`]).
    pub scale: f32,
    /// Query `i` attends keys `j <= i + (Tk - Tq)` only (the last query aligned with the last key,
    /// as with a KV cache; for `Tq > Tk` the first `Tq - Tk` queries see nothing and get 0).
    pub causal: bool,
    /// `(mask, batch stride)`: key `j` of batch `b` is real iff `mask[b * stride + j]`; padded keys
    /// are hidden from every query.
    pub key_padding: Option<(&'a [bool], usize)>,
    /// `[B, H, Tq, Tk]`, true where query `i` may attend key `j`.
    pub bool_mask: Option<MaskRef<'a, bool>>,
    /// `[B, H, Tq, Tk]`, added to the scaled scores (-inf hides a key).
    pub additive_mask: Option<MaskRef<'a, f32>>,
    /// Forces a kernel family (tests, benchmarks); `None` uses [`AttentionVariant::detect`].
    pub variant: Option<AttentionVariant>,
}

impl<'a> AttentionOpts<'a> {
    /// No masks, this scale, the detected kernels.
    pub fn new(scale: f32) -> Self {
        AttentionOpts {
            scale,
            causal: false,
            key_padding: None,
            bool_mask: None,
            additive_mask: None,
            variant: None,
        }
    }

    /// `1 / sqrt(dh)`, the scale `std.attention.attention` uses by default.
    pub fn default_scale(dh: usize) -> f32 {
        (1.0 / (dh as f64).sqrt()) as f32
    }
}

/// A pointer to the output that tasks write through, each to its own rows.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: the pointer is only written through by `Problem::run_task`, at offsets of the output
// view that differ between tasks (each task owns the rows of one (batch, head, query block), and
// the view was checked to be non-overlapping), while `attention` holds the `&mut` borrow.
unsafe impl Send for OutPtr {}
// SAFETY: as above; shared use never writes the same element from two threads.
unsafe impl Sync for OutPtr {}

/// `out = softmax(q @ k^T * scale + masks) @ v` per batch and query head; see the
/// [module documentation](self) for the shapes and the masks.
///
/// `threads` caps the number of threads (the pool's own count caps it too); 0 means all of the
/// pool's threads. The result does not depend on the number of threads.
///
/// # Panics
///
/// If the shapes disagree (`q [B, H, Tq, dh]`, `k [B, Hkv, Tk, dh]`, `v [B, Hkv, Tk, dv]`,
/// `out [B, H, Tq, dv]`, `H % Hkv == 0`), a mask is too short for its strides, or a forced
/// variant is not supported by this CPU.
pub fn attention(
    pool: &ThreadPool,
    threads: usize,
    q: Tensor4Ref<'_>,
    k: Tensor4Ref<'_>,
    v: Tensor4Ref<'_>,
    out: Tensor4Mut<'_>,
    opts: &AttentionOpts<'_>,
) {
    let [b, h, tq, dh] = q.dims;
    let [kb, hkv, tk, kdh] = k.dims;
    let [vb, vhkv, vtk, dv] = v.dims;
    assert!(
        kb == b && vb == b && kdh == dh && vhkv == hkv && vtk == tk && out.dims == [b, h, tq, dv],
        "attention shapes disagree: q {:?}, k {:?}, v {:?}, out {:?} (expected q [B, H, Tq, dh], \
         k [B, Hkv, Tk, dh], v [B, Hkv, Tk, dv], out [B, H, Tq, dv])",
        q.dims,
        k.dims,
        v.dims,
        out.dims
    );
    assert!(
        (hkv == 0 && h == 0) || (hkv > 0 && h % hkv == 0),
        "attention: {h} query heads are not a multiple of {hkv} key/value heads"
    );
    let full = [b, h, tq, tk];
    if let Some((kp, stride)) = opts.key_padding {
        let need = span([b, 1, 1, tk], [stride, 0, 0, 1]);
        assert!(
            kp.len() >= need,
            "key padding mask [{b}, {tk}] with batch stride {stride} needs {need} elements, it has {}",
            kp.len()
        );
    }
    if let Some(m) = opts.bool_mask {
        let need = span(full, m.strides);
        assert!(
            m.data.len() >= need,
            "boolean mask {full:?} with strides {:?} needs {need} elements, it has {}",
            m.strides,
            m.data.len()
        );
    }
    if let Some(m) = opts.additive_mask {
        let need = span(full, m.strides);
        assert!(
            m.data.len() >= need,
            "additive mask {full:?} with strides {:?} needs {need} elements, it has {}",
            m.strides,
            m.data.len()
        );
    }
    let isa = opts.variant.unwrap_or_else(AttentionVariant::detect).isa();
    if b == 0 || h == 0 || tq == 0 || dv == 0 {
        return;
    }

    let out_strides = out.strides;
    let problem = Problem {
        q,
        k,
        v,
        out: OutPtr(out.data.as_mut_ptr()),
        out_strides,
        group: h / hkv,
        tq,
        tk,
        dh,
        dv,
        dvp: dv.next_multiple_of(NC),
        causal_offset: tk as isize - tq as isize,
        opts,
        isa,
    };
    let q_blocks = tq.div_ceil(BQ);
    let tasks = b * h * q_blocks;
    let next = AtomicUsize::new(0);
    let parts = if threads == 0 { tasks } else { threads.min(tasks) };
    pool.run(parts, &|_, _| {
        let mut scratch = Scratch::new(tq, dh, problem.dvp);
        loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= tasks {
                break;
            }
            // Heaviest (last, for causal masks) query blocks first.
            let qb = q_blocks - 1 - t / (b * h);
            let bh = t % (b * h);
            problem.run_task(&mut scratch, bh / h, bh % h, qb);
        }
    });
}
