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
//! Each compiled function is named after its first kernel (`mlc_kernel_INDEX_NAME`), so
//! `perf record` / `perf report` profiles name the kernels.
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
use std::sync::atomic::{AtomicUsize, Ordering};

use cranelift_jit::JITBuilder;
use mlc_ir::{CodeKey, KernelFn};

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

/// One compiled function, which one or more kernels call.
#[derive(Clone, Copy)]
struct Code {
    entry: KernelEntry,
    bufs: usize,
    dims: usize,
    vectorized_loops: usize,
}

/// A kernel and the function that runs it.
struct Compiled {
    name: String,
    code: Code,
}

/// Compiled kernels and the executable memory that holds them.
pub struct JitModule {
    kernels: Vec<Compiled>,
    by_name: HashMap<String, usize>,
    /// The number of distinct compiled functions.
    functions: usize,
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

    /// Compiles `kernels` with the further switches of `tuning`. Kernels with the same
    /// [`mlc_ir::CodeKey`] (a model's repeated layers give many) share one compiled function.
    /// Functions compile independently, so with many of them several threads compile at once,
    /// each into a module of its own; the code of each kernel is the same either way.
    pub fn compile_tuned(kernels: &[KernelFn], opts: &JitOptions, tuning: &JitTuning) -> Result<JitModule, JitError> {
        let mut first_with_key: HashMap<CodeKey<'_>, usize> = HashMap::new();
        let mut unique: Vec<&KernelFn> = Vec::new();
        let code_of: Vec<usize> = kernels
            .iter()
            .map(|k| {
                *first_with_key.entry(k.code_key()).or_insert_with(|| {
                    unique.push(k);
                    unique.len() - 1
                })
            })
            .collect();
        // Under `perf record` (which sets PERF_BUILDID_DIR), Cranelift appends a line per
        // function to the profile's symbol map: one thread, so that the lines do not interleave.
        let profiled = std::env::var_os("PERF_BUILDID_DIR").is_some();
        let threads = if unique.len() < PARALLEL_MIN_KERNELS || profiled {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
        };
        // Threads take the next kernel from a shared counter: kernels differ in size by two
        // orders of magnitude, so fixed shares would leave a thread idle.
        let next = AtomicUsize::new(0);
        let parts: Vec<Result<Part, (usize, JitError)>> = if threads <= 1 {
            vec![compile_part(&unique, &next, opts, tuning)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| s.spawn(|| compile_part(&unique, &next, opts, tuning)))
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
            functions: unique.len(),
            modules: Vec::with_capacity(parts.len()),
        };
        // Every module built is kept (and freed on drop) even if another thread failed. The
        // error reported is the first kernel's that failed, whichever thread compiled it: every
        // kernel before the last one taken was attempted, so that does not depend on timing.
        let mut codes: Vec<Option<Code>> = vec![None; unique.len()];
        let mut first_error: Option<(usize, JitError)> = None;
        for part in parts {
            match part {
                Ok(part) => {
                    for (i, code) in part.codes {
                        codes[i] = Some(code);
                    }
                    out.modules.push(part.module);
                }
                Err((i, e)) => {
                    if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_error = Some((i, e));
                    }
                }
            }
        }
        if let Some((_, e)) = first_error {
            return Err(e);
        }
        let codes = codes
            .into_iter()
            .map(|c| c.ok_or_else(|| lower::backend("", &"internal: a kernel was not compiled")))
            .collect::<Result<Vec<Code>, _>>()?;
        out.kernels = kernels
            .iter()
            .zip(code_of)
            .map(|(k, c)| Compiled {
                name: k.name.clone(),
                code: codes[c],
            })
            .collect();
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

    /// The number of distinct compiled functions: kernels with the same [`mlc_ir::CodeKey`]
    /// share one.
    pub fn functions(&self) -> usize {
        self.functions
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
        self.kernels[i].code.vectorized_loops
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
        let Compiled { name, code: k } = &self.kernels[i];
        assert_eq!(bufs.len(), k.bufs, "kernel `{name}`: buffer count");
        assert_eq!(dims.len(), k.dims, "kernel `{name}`: dim count");
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

/// Some of the kernels, compiled into a module of their own: each with its index.
struct Part {
    codes: Vec<(usize, Code)>,
    module: cranelift_jit::JITModule,
}

/// Compiles kernels into one Cranelift module, taking the index of the next one from `next`
/// until none are left. An error comes with the index of the kernel that failed (`usize::MAX`
/// if the module itself could not be made).
fn compile_part(
    kernels: &[&KernelFn],
    next: &AtomicUsize,
    opts: &JitOptions,
    tuning: &JitTuning,
) -> Result<Part, (usize, JitError)> {
    let mut jb = JITBuilder::with_flags(&lower::flags(false), cranelift_module::default_libcall_names())
        .map_err(|e| (usize::MAX, lower::backend("", &e)))?;
    for f in Libm::ALL {
        jb.symbol(f.symbol(), f.address());
    }
    let mut module = cranelift_jit::JITModule::new(jb);
    let mut declared = Vec::new();
    let defined = Lowerer::new_tuned(&mut module, opts, tuning, "mlc_rt_")
        .map_err(|e| (usize::MAX, e))
        .and_then(|mut lowerer| {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(k) = kernels.get(i) else {
                    return Ok(());
                };
                // Named for profilers: under `perf record`, Cranelift writes each function's
                // address and name to /tmp/perf-PID.map, where `perf report` finds them.
                let symbol = format!("mlc_kernel_{i}_{}", k.name);
                let (id, vectorized) = lowerer.define(&mut module, k, Some(&symbol)).map_err(|e| (i, e))?;
                declared.push((i, id, vectorized));
            }
        });
    if let Err(e) = defined {
        // SAFETY: nothing was finalized, so no pointer into the module's memory exists.
        unsafe { module.free_memory() };
        return Err(e);
    }
    if let Err(e) = module.finalize_definitions() {
        // SAFETY: as above; finalizing failed, so no code of the module is callable.
        unsafe { module.free_memory() };
        return Err((usize::MAX, lower::backend("", &e)));
    }
    let codes = declared
        .into_iter()
        .map(|(i, id, vectorized)| {
            let code = module.get_finalized_function(id);
            // SAFETY: `code` is the start of the finalized function `id`, whose signature we
            // declared as (pointer, pointer, i64, i64) with no results in the ISA's default
            // calling convention, which is the platform C ABI: exactly `KernelEntry`.
            let entry = unsafe { std::mem::transmute::<*const u8, KernelEntry>(code) };
            let code = Code {
                entry,
                bufs: kernels[i].bufs.len(),
                dims: kernels[i].dims.len(),
                vectorized_loops: vectorized,
            };
            (i, code)
        })
        .collect();
    Ok(Part { codes, module })
}
