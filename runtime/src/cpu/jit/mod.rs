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

mod codegen;
mod libm;
mod simd;

use std::collections::HashMap;

use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITBuilder;
use cranelift_module::{FuncId, Linkage, Module};
use mlc_ir::KernelFn;

use codegen::{Features, Gen};
use libm::Libm;

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
    /// Owns the code; only touched again in `Drop`.
    module: Option<cranelift_jit::JITModule>,
}

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
        let backend = |kernel: &str, e: &dyn std::fmt::Display| JitError::Backend {
            kernel: kernel.to_string(),
            detail: e.to_string(),
        };
        let verifier = if cfg!(debug_assertions) { "true" } else { "false" };
        let flags = [("opt_level", "speed"), ("enable_verifier", verifier)];
        let mut jb =
            JITBuilder::with_flags(&flags, cranelift_module::default_libcall_names()).map_err(|e| backend("", &e))?;
        for f in Libm::ALL {
            jb.symbol(f.symbol(), f.address());
        }
        let mut module = cranelift_jit::JITModule::new(jb);
        let isa = module.isa();
        let feat = Features {
            fma: opts.fma && isa.has_native_fma(),
            vectorize: opts.vectorize,
            vector_round: isa.has_round(),
        };
        let call_conv = isa.default_call_conv();
        let ptr = module.target_config().pointer_type();

        let mut libm_ids: Vec<FuncId> = Vec::new();
        for f in Libm::ALL {
            let id = module
                .declare_function(f.symbol(), Linkage::Import, &f.signature(call_conv))
                .map_err(|e| backend("", &e))?;
            libm_ids.push(id);
        }

        let mut sig = module.make_signature();
        sig.params.extend([ptr, ptr, I64, I64].map(AbiParam::new));

        let mut ctx = module.make_context();
        let mut fctx = FunctionBuilderContext::new();
        let mut declared = Vec::with_capacity(kernels.len());
        for (n, k) in kernels.iter().enumerate() {
            let id = module
                .declare_anonymous_function(&sig)
                .map_err(|e| backend(&k.name, &e))?;
            ctx.func.signature = sig.clone();
            ctx.func.name = UserFuncName::user(0, n as u32);
            let libm = libm_ids
                .iter()
                .map(|&id| module.declare_func_in_func(id, &mut ctx.func))
                .collect();
            let vectorized =
                build(k, &mut ctx.func, &mut fctx, libm, feat, module.target_config()).map_err(|detail| {
                    JitError::Unsupported {
                        kernel: k.name.clone(),
                        detail,
                    }
                })?;
            module
                .define_function(id, &mut ctx)
                .map_err(|e| backend(&k.name, &format!("{e:?}")))?;
            module.clear_context(&mut ctx);
            declared.push((id, vectorized));
        }
        module.finalize_definitions().map_err(|e| backend("", &e))?;

        let mut compiled = Vec::with_capacity(kernels.len());
        let mut by_name = HashMap::new();
        for (i, (k, (id, vectorized))) in kernels.iter().zip(declared).enumerate() {
            let code = module.get_finalized_function(id);
            // SAFETY: `code` is the start of the finalized function `id`, whose signature we
            // declared as (pointer, pointer, i64, i64) with no results in the ISA's default
            // calling convention, which is the platform C ABI: exactly `KernelEntry`.
            let entry = unsafe { std::mem::transmute::<*const u8, KernelEntry>(code) };
            by_name.entry(k.name.clone()).or_insert(i);
            compiled.push(Compiled {
                name: k.name.clone(),
                entry,
                bufs: k.bufs.len(),
                dims: k.dims.len(),
                vectorized_loops: vectorized,
            });
        }
        Ok(JitModule {
            kernels: compiled,
            by_name,
            module: Some(module),
        })
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
        if let Some(m) = self.module.take() {
            // SAFETY: the code's only entry points are the `entry` pointers in `self.kernels`,
            // which never leave this struct; `drop` has exclusive access, so no call through
            // `&self` is running, and none can start afterwards.
            unsafe { m.free_memory() };
        }
    }
}

/// Lowers one kernel into `func`. Returns the number of vectorized loops.
fn build(
    k: &KernelFn,
    func: &mut cranelift_codegen::ir::Function,
    fctx: &mut FunctionBuilderContext,
    libm: Vec<cranelift_codegen::ir::FuncRef>,
    feat: Features,
    target: cranelift_codegen::isa::TargetFrontendConfig,
) -> codegen::R<usize> {
    let ptr = target.pointer_type();
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let [bufs_p, dims_p, lo, hi] = b.block_params(entry) else {
        return Err("internal: entry parameters".into());
    };
    let (bufs_p, dims_p, lo, hi) = (*bufs_p, *dims_p, *lo, *hi);
    let step = i32::from(ptr.bytes() as u8);
    let bufs = (0..k.bufs.len())
        .map(|j| b.ins().load(ptr, codegen::mem(), bufs_p, step * j as i32))
        .collect();
    let dims = (0..k.dims.len())
        .map(|j| b.ins().load(I64, codegen::mem(), dims_p, 8 * j as i32))
        .collect();
    let mut g = Gen {
        k,
        b,
        feat,
        bufs,
        dims,
        ivars: HashMap::new(),
        svars: HashMap::new(),
        libm,
        vectorized: 0,
    };
    let pvar = k.parallel.0;
    g.counted_loop(lo, hi, 1, |g, p| {
        g.scoped(|g| {
            g.ivars.insert(pvar, p);
            g.stmts(&k.body)
        })
    })?;
    g.b.ins().return_(&[]);
    g.b.seal_all_blocks();
    let vectorized = g.vectorized;
    g.b.finalize(target);
    Ok(vectorized)
}
