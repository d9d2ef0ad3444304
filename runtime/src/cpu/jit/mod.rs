//! The CPU backend: Kernel IR compiled to native code with Cranelift, at load time (JIT).
//!
//! [`JitModule::compile`] lowers a list of [`KernelFn`]s once (Cranelift `opt_level=speed`, host
//! ISA features detected at run time) and keeps the code alive until the module is dropped. A
//! compiled kernel has the C ABI
//!
//! ```text
//! extern "C" fn(bufs: *const *mut u8, dims: *const i64, lo: i64, hi: i64)
//! ```
//!
//! and runs its body for every parallel index `p` in `lo..hi`; the executor splits the parallel
//! extent into ranges, one per thread, and calls [`JitModule::call`] from each (the module is
//! `Send + Sync`).
//!
//! Semantics are the interpreter's, element by element (the Graph IR ops of `mlc_ir::op`):
//! integer `div` floors and `rem` takes the divisor's sign, `round` is half-to-even, `max`/`min`
//! ignore a NaN operand, float→int casts truncate and saturate (NaN → 0), `i64`→`i32` wraps.
//! `exp`, `log`, `tanh`, `sigmoid`, `erf`, `sin`, `cos`, `pow` and float `rem` call the same Rust
//! functions the interpreter uses, so they match bit for bit. The differences, because a kernel
//! cannot report errors:
//! - integer division or remainder by zero gives 0 (the interpreter fails with
//!   `DivisionByZero`); an executor that must report it checks divisors before the call;
//! - integer `pow` with a negative exponent gives 0 (the interpreter fails);
//! - with [`JitOptions::fma`] (the default, where the CPU has FMA) `a*b + c`, `a*b - c` and
//!   `c - a*b` are fused into one rounding, in scalar and vector code alike; turn it off for
//!   bit-exact agreement with the interpreter.
//!
//! Loops marked `vectorize` run four `f32` lanes at a time when their body allows it (see
//! `simd.rs`), with a scalar tail; their results are bit-identical to the scalar loop.
//!
//! The lowering itself (`lower.rs`, over `codegen.rs` and `simd.rs`) is generic over
//! `cranelift_module::Module`: the JIT defines the kernels in a `cranelift_jit::JITModule`,
//! [`crate::cpu::aot`] in a `cranelift_object::ObjectModule`, through the same code.

mod codegen;
pub(crate) mod libm;
pub(crate) mod lower;
mod simd;
mod vmath;

use std::collections::HashMap;

use cranelift_jit::JITBuilder;
use mlc_ir::KernelFn;

use libm::Libm;
use lower::Lowerer;

/// The machine signature of a compiled kernel.
pub type KernelEntry = unsafe extern "C" fn(bufs: *const *mut u8, dims: *const i64, lo: i64, hi: i64);

/// Code-generation choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitOptions {
    /// Fuse `a*b ± c` into `fma` where the CPU has a native FMA (one rounding instead of two).
    pub fma: bool,
    /// Emit SIMD code for loops marked `vectorize` (when their body qualifies).
    pub vectorize: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            fma: true,
            vectorize: true,
        }
    }
}

/// Further code-generation switches, kept apart from [`JitOptions`] so that struct literals of
/// `JitOptions` elsewhere keep compiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitTuning {
    /// Run reduction loops (only `let`s and `acc = acc op e` with `op` in add/mul/max/min on
    /// `f32` accumulators) four lanes at a time, with partial accumulators combined at the end.
    /// Reorders float sums and products (max/min stay exact).
    pub vectorize_reductions: bool,
    /// Vectorize loops the scheduler did not mark `vectorize` when their body qualifies and no
    /// buffer is both stored and loaded in the loop (requires [`JitOptions::vectorize`]).
    pub vectorize_unmarked: bool,
    /// `exp` as an inline polynomial (Cephes-style range reduction, max relative error about
    /// 2 ulp), and `tanh`, `sigmoid` and `erf` built on it (see `vmath.rs`), in scalar and vector
    /// code alike, instead of calling the interpreter's functions once per element.
    pub poly_math: bool,
}

impl Default for JitTuning {
    fn default() -> Self {
        JitTuning {
            vectorize_reductions: true,
            vectorize_unmarked: true,
            poly_math: true,
        }
    }
}

/// Why a kernel could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    /// The kernel uses something the backend does not lower (a dtype, an op on a dtype) or is
    /// malformed (a variable out of scope, mismatched operand dtypes).
    #[error("kernel `{kernel}`: {detail}")]
    Unsupported { kernel: String, detail: String },
    /// Cranelift failed (a verifier error is a bug in this backend).
    #[error("cranelift, kernel `{kernel}`: {detail}")]
    Backend { kernel: String, detail: String },
}

/// One compiled kernel.
struct Compiled {
    name: String,
    entry: KernelEntry,
    bufs: usize,
    dims: usize,
    vectorized_loops: usize,
}

/// Compiled kernels and the executable memory that holds them.
pub struct JitModule {
    kernels: Vec<Compiled>,
    by_name: HashMap<String, usize>,
    /// Own the code (one module per thread that compiled a share of the kernels); only touched
    /// again in `Drop`.
    modules: Vec<cranelift_jit::JITModule>,
}

/// Below this many kernels, compiling on one thread beats starting others.
const PARALLEL_MIN_KERNELS: usize = 8;

// SAFETY: after `compile` returns, the Cranelift module is never accessed through `&self` (it is
// only freed in `Drop`, which has exclusive access). What `&self` methods use is the function
// pointers, which point into finalized, read-only executable memory, and plain data. The
// compiled kernels keep no state between calls (their only memory is the caller's buffers), so
// calling them from several threads at once is sound, given the `call` contract.
unsafe impl Sync for JitModule {}
// `Send` is automatic: the Cranelift module and the function pointers are plain owned data.

impl JitModule {
    /// Compiles `kernels` with the default options.
    pub fn compile(kernels: &[KernelFn]) -> Result<JitModule, JitError> {
        JitModule::compile_with(kernels, &JitOptions::default())
    }

    /// Compiles `kernels`; kernel `i` is called as `call(i, ...)`.
    pub fn compile_with(kernels: &[KernelFn], opts: &JitOptions) -> Result<JitModule, JitError> {
        JitModule::compile_tuned(kernels, opts, &JitTuning::default())
    }

    /// Compiles `kernels` with the further switches of `tuning`. Kernels compile independently,
    /// so a large set is split into contiguous shares compiled on several threads at once
    /// (each into a module of its own); the code of each kernel is the same either way.
    pub fn compile_tuned(kernels: &[KernelFn], opts: &JitOptions, tuning: &JitTuning) -> Result<JitModule, JitError> {
        let threads = if kernels.len() < PARALLEL_MIN_KERNELS {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
        };
        let share = kernels.len().div_ceil(threads).max(1);
        let parts: Vec<Result<Part, JitError>> = if threads <= 1 {
            vec![compile_part(kernels, opts, tuning)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = kernels
                    .chunks(share)
                    .map(|chunk| s.spawn(move || compile_part(chunk, opts, tuning)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut out = JitModule {
            kernels: Vec::with_capacity(kernels.len()),
            by_name: HashMap::new(),
            modules: Vec::with_capacity(parts.len()),
        };
        // Every module built is kept (and freed on drop) even if a later share failed.
        let mut first_error = None;
        for part in parts {
            match part {
                Ok(part) => {
                    out.kernels.extend(part.kernels);
                    out.modules.push(part.module);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        for (i, k) in out.kernels.iter().enumerate() {
            out.by_name.entry(k.name.clone()).or_insert(i);
        }
        Ok(out)
    }

    /// The number of kernels.
    pub fn len(&self) -> usize {
        self.kernels.len()
    }

    /// True if there are no kernels.
    pub fn is_empty(&self) -> bool {
        self.kernels.is_empty()
    }

    /// The name of kernel `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.kernels[i].name
    }

    /// The index of the first kernel called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// How many loops of kernel `i` were emitted as SIMD code.
    pub fn vectorized_loops(&self, i: usize) -> usize {
        self.kernels[i].vectorized_loops
    }

    /// Runs kernel `i` for parallel indices `lo..hi` (nothing if `hi <= lo`).
    ///
    /// Panics if `i` is out of range or if `bufs`/`dims` do not have the kernel's number of
    /// buffers and dims.
    ///
    /// # Safety
    ///
    /// `bufs[j]` must be the base of a live allocation of buffer `j`'s dtype (bool: one byte,
    /// 0 or 1), aligned for it and valid for every element the kernel touches for these `dims`
    /// and every parallel index in `lo..hi` (reads for read buffers, writes for write buffers).
    /// Nothing else may access the written elements during the call; concurrent calls must
    /// write disjoint elements (e.g. disjoint `lo..hi` ranges of the parallel index).
    pub unsafe fn call(&self, i: usize, bufs: &[*mut u8], dims: &[i64], lo: i64, hi: i64) {
        let k = &self.kernels[i];
        assert_eq!(bufs.len(), k.bufs, "kernel `{}`: buffer count", k.name);
        assert_eq!(dims.len(), k.dims, "kernel `{}`: dim count", k.name);
        // SAFETY: `entry` is live code of this module with the `KernelEntry` signature; the code
        // reads `bufs[..k.bufs]` and `dims[..k.dims]`, whose lengths were just checked; every
        // buffer access is valid by this function's contract, which the caller upholds.
        unsafe { (k.entry)(bufs.as_ptr(), dims.as_ptr(), lo, hi) }
    }
}

impl Drop for JitModule {
    fn drop(&mut self) {
        for m in self.modules.drain(..) {
            // SAFETY: the code's only entry points are the `entry` pointers in `self.kernels`,
            // which never leave this struct; `drop` has exclusive access, so no call through
            // `&self` is running, and none can start afterwards.
            unsafe { m.free_memory() };
        }
    }
}

/// Some of the kernels, compiled into a module of their own.
struct Part {
    kernels: Vec<Compiled>,
    module: cranelift_jit::JITModule,
}

/// Compiles `kernels` into one Cranelift module.
fn compile_part(kernels: &[KernelFn], opts: &JitOptions, tuning: &JitTuning) -> Result<Part, JitError> {
    let mut jb = JITBuilder::with_flags(&lower::flags(false), cranelift_module::default_libcall_names())
        .map_err(|e| lower::backend("", &e))?;
    for f in Libm::ALL {
        jb.symbol(f.symbol(), f.address());
    }
    let mut module = cranelift_jit::JITModule::new(jb);
    let declared = {
        let mut lowerer = Lowerer::new_tuned(&mut module, opts, tuning, "mlc_rt_")?;
        kernels
            .iter()
            .map(|k| lowerer.define(&mut module, k, None))
            .collect::<Result<Vec<_>, _>>()
    };
    let declared = match declared {
        Ok(d) => d,
        Err(e) => {
            // SAFETY: nothing was finalized, so no pointer into the module's memory exists.
            unsafe { module.free_memory() };
            return Err(e);
        }
    };
    module.finalize_definitions().map_err(|e| lower::backend("", &e))?;
    let compiled = kernels
        .iter()
        .zip(declared)
        .map(|(k, (id, vectorized))| {
            let code = module.get_finalized_function(id);
            // SAFETY: `code` is the start of the finalized function `id`, whose signature we
            // declared as (pointer, pointer, i64, i64) with no results in the ISA's default
            // calling convention, which is the platform C ABI: exactly `KernelEntry`.
            let entry = unsafe { std::mem::transmute::<*const u8, KernelEntry>(code) };
            Compiled {
                name: k.name.clone(),
                entry,
                bufs: k.bufs.len(),
                dims: k.dims.len(),
                vectorized_loops: vectorized,
            }
        })
        .collect();
    Ok(Part {
        kernels: compiled,
        module,
    })
}
