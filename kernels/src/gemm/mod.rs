//! Single-precision matrix multiplication (SGEMM), BLIS style.
//!
//! `C[M,N] (= | +=) alpha * A[M,K] @ B[K,N]`, then an optional fused [`Epilogue`], on row-major
//! `f32` matrices with arbitrary strides. Operands are views ([`MatRef`], [`MatMut`]); a transposed
//! `B` (a Linear layer's weight stored as `[N,K]`) is just [`MatRef::transposed`].
//!
//! How it runs:
//!
//! - **Micro-kernels** for AVX-512, AVX2+FMA and a portable fallback (also the path on non-x86),
//!   picked once at run time by CPU feature detection ([`KernelVariant::detect`]); a caller may
//!   force one ([`GemmOpts::variant`]).
//! - **Packing**: `B` is packed into panels of [`NR`] columns (zero padded) in 64-byte aligned
//!   buffers, block by block as the loops reach it; `A` is read in place when row-major (packed
//!   into `MR`-row micro-panels otherwise, or when its rows are a multiple of 4 KiB apart); small
//!   row-major `B`s are read in place too. Cache blocking (`KC`, `MC`, `NC`) comes from the CPU's
//!   cache sizes (sysfs on Linux, sane defaults elsewhere).
//! - **Prepacked weights**: [`PackedB`] packs a weight matrix once (at load time) in the panel
//!   layout that every kernel variant reads (on Linux in transparent huge pages when large);
//!   [`gemm_prepacked`] uses it.
//! - **Skinny `M`** (1..=16, batch-1 decoding): `B` is streamed once with register tiles sized for
//!   `M` (several panels at a time for small `M`), from a [`PackedB`], a row-major `B` (in place,
//!   or copied a K chunk at a time into L2 when it is large and `M` is not tiny), or a transposed
//!   `B` with dot-product kernels.
//! - **Threads**: work is split over a persistent [`ThreadPool`] in a 2-D grid of `M` and `N`
//!   blocks (batches for [`gemm_batched`]); small problems stay on the caller.
//!
//! The epilogue is applied while the output tile is still in cache, in the order documented on
//! [`Epilogue`].
//!
//! ```
//! use mlc_kernels::{
//!     Activation, Epilogue, GemmOpts, MatMut, MatRef, PackedB, ThreadPool, gemm, gemm_prepacked,
//! };
//!
//! let (m, k, n) = (2, 3, 4);
//! let x = vec![1.0f32; m * k];
//! let w = vec![0.5f32; n * k]; // a Linear weight, stored [N, K]
//! let bias = vec![0.25f32; n];
//! let mut y = vec![0.0f32; m * n];
//! let pool = ThreadPool::global();
//! let opts = GemmOpts::with_epilogue(Epilogue {
//!     bias: Some(&bias),
//!     activation: Activation::Relu,
//!     ..Epilogue::default()
//! });
//! // y = relu(x @ w^T + bias)
//! gemm(pool, MatRef::new(&x, m, k, k), MatRef::transposed(&w, k, n, k), MatMut::new(&mut y, m, n, n), &opts);
//! assert!(y.iter().all(|&v| v == 1.75));
//!
//! // The same with the weight packed once (at load time) and reused for every call.
//! let packed = PackedB::new(&w, k, n, true);
//! let mut y2 = vec![0.0f32; m * n];
//! gemm_prepacked(pool, MatRef::new(&x, m, k, k), &packed, MatMut::new(&mut y2, m, n, n), &opts);
//! assert_eq!(y, y2);
//! ```

mod batched;
mod driver;
mod epilogue;
mod gemv;
#[cfg(target_arch = "x86_64")]
mod microkernel_avx2;
#[cfg(target_arch = "x86_64")]
mod microkernel_avx512;
mod microkernel_portable;
mod pack;
mod quant;
#[cfg(target_arch = "x86_64")]
mod quant_avx2;
#[cfg(target_arch = "x86_64")]
mod quant_avx512;
#[cfg(test)]
mod quant_tests;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

pub use batched::{BatchMatMut, BatchMatRef, gemm_batched};
pub use driver::SKINNY_M;
pub use epilogue::{Activation, Epilogue, Residual};
pub use pack::PackedB;
pub use quant::{QBLOCK, QuantError, QuantFormat, QuantMatrix, gemm_quantized, quantized_pays_off};

use crate::threadpool::ThreadPool;

/// Width of a packed `B` panel (columns), the same for every kernel variant.
pub const NR: usize = 32;

/// A read-only matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// The number of elements a `rows x cols` view with these strides spans (0 if it is empty).
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix whose rows start `ld` elements apart.
    ///
    /// # Panics
    ///
    /// If `data` is too short for the view.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Self {
        Self::from_strides(data, rows, cols, ld, 1)
    }

    /// The `rows x cols` matrix stored transposed, as a row-major `cols x rows` matrix with rows
    /// `ld` apart: element `(i, j)` is `data[j * ld + i]`. A Linear weight `W[N,K]` used as
    /// `B[K,N]` is `MatRef::transposed(w, k, n, k)`.
    ///
    /// # Panics
    ///
    /// If `data` is too short for the view.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize, ld: usize) -> Self {
        Self::from_strides(data, rows, cols, 1, ld)
    }

    /// A view with arbitrary element strides.
    ///
    /// # Panics
    ///
    /// If `data` is too short for the view.
    pub fn from_strides(data: &'a [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Self {
        let need = span(rows, cols, row_stride, col_stride);
        assert!(
            data.len() >= need,
            "matrix view {rows}x{cols} with strides ({row_stride}, {col_stride}) needs {need} elements, the slice has {}",
            data.len()
        );
        MatRef {
            data,
            rows,
            cols,
            rs: row_stride,
            cs: col_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance between rows, in elements.
    pub fn row_stride(&self) -> usize {
        self.rs
    }

    /// Distance between columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.cs
    }

    /// The underlying slice.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
}

/// A mutable row-major matrix view: element `(i, j)` is `data[i * ld + j]`, `ld >= cols`.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    ld: usize,
}

impl<'a> MatMut<'a> {
    /// A row-major `rows x cols` matrix whose rows start `ld` elements apart.
    ///
    /// # Panics
    ///
    /// If `ld < cols` (rows would overlap) or `data` is too short.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, ld: usize) -> Self {
        assert!(rows <= 1 || ld >= cols, "output rows overlap: ld {ld} < cols {cols}");
        let need = span(rows, cols, ld, 1);
        assert!(
            data.len() >= need,
            "output view {rows}x{cols} (ld {ld}) needs {need} elements, the slice has {}",
            data.len()
        );
        MatMut { data, rows, cols, ld }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance between rows, in elements.
    pub fn ld(&self) -> usize {
        self.ld
    }
}

/// A micro-kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelVariant {
    /// 512-bit kernels (`avx512f`), 12x32 register tile.
    Avx512,
    /// 256-bit kernels (`avx2` + `fma`), 6x16 register tile.
    Avx2Fma,
    /// Plain Rust that the compiler auto-vectorises, 4x16 tile; the only variant off x86-64.
    Portable,
}

impl KernelVariant {
    /// The best variant this CPU supports, detected once and cached.
    pub fn detect() -> KernelVariant {
        static CHOICE: OnceLock<KernelVariant> = OnceLock::new();
        *CHOICE.get_or_init(|| {
            [KernelVariant::Avx512, KernelVariant::Avx2Fma]
                .into_iter()
                .find(|v| v.is_supported())
                .unwrap_or(KernelVariant::Portable)
        })
    }

    /// Whether this CPU can run the variant.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelVariant::Avx512 => crate::x86::has_avx512(),
            #[cfg(target_arch = "x86_64")]
            KernelVariant::Avx2Fma => crate::x86::has_avx2_fma(),
            #[cfg(not(target_arch = "x86_64"))]
            KernelVariant::Avx512 | KernelVariant::Avx2Fma => false,
            KernelVariant::Portable => true,
        }
    }

    /// A short name (`"avx512"`, `"avx2+fma"`, `"portable"`).
    pub fn name(self) -> &'static str {
        match self {
            KernelVariant::Avx512 => "avx512",
            KernelVariant::Avx2Fma => "avx2+fma",
            KernelVariant::Portable => "portable",
        }
    }

    /// The kernel table of a variant.
    ///
    /// # Panics
    ///
    /// If the CPU does not support the variant.
    pub(crate) fn isa(self) -> &'static driver::Isa {
        assert!(
            self.is_supported(),
            "kernel variant {} is not supported by this CPU",
            self.name()
        );
        match self {
            #[cfg(target_arch = "x86_64")]
            KernelVariant::Avx512 => &microkernel_avx512::ISA,
            #[cfg(target_arch = "x86_64")]
            KernelVariant::Avx2Fma => &microkernel_avx2::ISA,
            _ => &microkernel_portable::ISA,
        }
    }
}

/// Options of one GEMM call.
#[derive(Clone, Copy, Debug)]
pub struct GemmOpts<'a> {
    /// Multiplies `A @ B` (default 1).
    pub alpha: f32,
    /// `false`: `C = alpha * A @ B`; `true`: `C += alpha * A @ B` (before the epilogue).
    pub accumulate: bool,
    /// Applied to the result; see [`Epilogue`].
    pub epilogue: Epilogue<'a>,
    /// Forces a kernel variant (tests and benchmarks); `None` uses [`KernelVariant::detect`].
    pub variant: Option<KernelVariant>,
}

impl Default for GemmOpts<'_> {
    fn default() -> Self {
        GemmOpts {
            alpha: 1.0,
            accumulate: false,
            epilogue: Epilogue::default(),
            variant: None,
        }
    }
}

impl<'a> GemmOpts<'a> {
    /// Default options with this epilogue.
    pub fn with_epilogue(epilogue: Epilogue<'a>) -> Self {
        GemmOpts {
            epilogue,
            ..Self::default()
        }
    }
}

/// `C = alpha * A @ B` (or `+=` with [`GemmOpts::accumulate`]), then the epilogue.
///
/// `A` is `[M,K]`, `B` is `[K,N]` (any strides; [`MatRef::transposed`] for a `[N,K]` weight), `C`
/// is `[M,N]`. Runs on up to `pool.num_threads()` threads.
///
/// # Panics
///
/// If the shapes do not agree, or the epilogue's bias or residual is too small for `C`.
pub fn gemm(pool: &ThreadPool, a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, opts: &GemmOpts<'_>) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm shapes disagree: A {}x{}, B {}x{}, C {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    let b = driver::RawB::Strided {
        ptr: b.data.as_ptr(),
        rs: b.rs,
        cs: b.cs,
    };
    // SAFETY: `b` is the checked view `B`, whose shape matches (above).
    unsafe { run_views(&driver::Ctx::new(pool, opts.variant), a, b, c, opts) }
}

/// Runs a GEMM on checked views.
///
/// # Safety
///
/// `b` must be a valid `a.cols() x c.cols()` operand borrowed for the call.
pub(crate) unsafe fn run_views(
    ctx: &driver::Ctx<'_>,
    a: MatRef<'_>,
    b: driver::RawB,
    c: MatMut<'_>,
    opts: &GemmOpts<'_>,
) {
    let problem = driver::Problem {
        m: a.rows,
        n: c.cols,
        k: a.cols,
        a: driver::RawA::of(&a),
        b,
        c: driver::RawC {
            ptr: c.data.as_mut_ptr(),
            ld: c.ld,
        },
        alpha: opts.alpha,
        beta: if opts.accumulate { 1.0 } else { 0.0 },
        epi: opts.epilogue.raw(a.rows, c.cols),
    };
    // SAFETY: the views were checked against their slices (constructors) and against each other
    // (the callers, and `Epilogue::raw`); `c` is borrowed mutably for the whole call, so nothing
    // else reads or writes it, and `a`, `b`, bias and residual are borrowed shared for the call.
    unsafe { driver::run(ctx, &problem) }
}

/// Like [`gemm`] with a `B` packed once by [`PackedB::new`].
///
/// # Panics
///
/// If the shapes do not agree, or the epilogue's bias or residual is too small for `C`.
pub fn gemm_prepacked(pool: &ThreadPool, a: MatRef<'_>, b: &PackedB, c: MatMut<'_>, opts: &GemmOpts<'_>) {
    assert!(
        a.cols == b.k() && a.rows == c.rows && b.n() == c.cols,
        "gemm_prepacked shapes disagree: A {}x{}, packed B {}x{}, C {}x{}",
        a.rows,
        a.cols,
        b.k(),
        b.n(),
        c.rows,
        c.cols
    );
    // SAFETY: the packed buffer holds the whole `k x n` matrix, whose shape matches (above).
    unsafe { run_views(&driver::Ctx::new(pool, opts.variant), a, b.raw(), c, opts) }
}
