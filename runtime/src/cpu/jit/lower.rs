//! The code path that the JIT ([`super::JitModule`]) and the object writer
//! ([`crate::cpu::aot`]) share: Kernel IR lowered into any [`cranelift_module::Module`], as
//! Cranelift's own `cranelift-jit` and `cranelift-object` share the `Module` trait.
//!
//! A [`Lowerer`] declares the scalar callouts ([`Libm`]) as imported functions of the module,
//! under stable names (`mlc_rt_expf` in the JIT, `PREFIX_rt_expf` in an object file): the JIT
//! binds them to the Rust functions of `libm.rs`, an object file leaves them for the linker
//! (their C definitions are [`Libm::c_definition`]). Each [`Lowerer::define`] then lowers one kernel and defines it,
//! anonymous (JIT) or exported under a symbol (object).

use std::collections::HashMap;

use cranelift_codegen::Context;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{FuncId, Linkage, Module};
use mlc_ir::KernelFn;

use super::codegen::{self, Features, Gen};
use super::libm::Libm;
use super::{JitError, JitOptions, JitTuning};

/// The Cranelift flags every kernel is compiled with. `pic` asks for position-independent code
/// (what an object file linked into a PIE executable or a shared library needs).
pub(crate) fn flags(pic: bool) -> Vec<(&'static str, &'static str)> {
    let verifier = if cfg!(debug_assertions) { "true" } else { "false" };
    vec![
        ("opt_level", "speed"),
        ("enable_verifier", verifier),
        ("is_pic", if pic { "true" } else { "false" }),
    ]
}

/// A Cranelift flag builder with [`flags`] set.
pub(crate) fn flag_builder(pic: bool) -> Result<settings::Builder, JitError> {
    let mut b = settings::builder();
    for (name, value) in flags(pic) {
        b.set(name, value).map_err(|e| backend("", &e))?;
    }
    Ok(b)
}

pub(crate) fn backend(kernel: &str, e: &dyn std::fmt::Display) -> JitError {
    JitError::Backend {
        kernel: kernel.to_string(),
        detail: e.to_string(),
    }
}

/// Lowers kernels into one Cranelift module.
pub(crate) struct Lowerer {
    feat: Features,
    /// The callouts, declared as imports, indexed by `Libm as usize`.
    libm: Vec<FuncId>,
    /// `(bufs: ptr, dims: ptr, lo: i64, hi: i64)`, no results, the ISA's default (C) ABI.
    sig: Signature,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// Counter for `UserFuncName`s.
    next: u32,
    /// `MLC_JIT_DISASM` is set: print every kernel's machine code to stderr (a debugging aid,
    /// documented in ARCHITECTURE.md).
    disasm: bool,
}

impl Lowerer {
    /// Declares the callouts in `module`, named `libm_prefix` + [`Libm::base_name`] (the JIT's
    /// `mlc_rt_`), and reads the target's features.
    pub(crate) fn new<M: Module>(module: &mut M, opts: &JitOptions, libm_prefix: &str) -> Result<Lowerer, JitError> {
        Lowerer::new_tuned(module, opts, &JitTuning::default(), libm_prefix)
    }

    /// As [`Self::new`], with the further switches of `tuning`.
    pub(crate) fn new_tuned<M: Module>(
        module: &mut M,
        opts: &JitOptions,
        tuning: &JitTuning,
        libm_prefix: &str,
    ) -> Result<Lowerer, JitError> {
        let isa = module.isa();
        let feat = Features {
            fma: opts.fma && isa.has_native_fma(),
            vectorize: opts.vectorize,
            vector_round: isa.has_round(),
            reductions: tuning.vectorize_reductions,
            unmarked: tuning.vectorize_unmarked && opts.vectorize,
            poly_math: tuning.poly_math,
        };
        let call_conv = isa.default_call_conv();
        let ptr = module.target_config().pointer_type();
        let mut libm = Vec::with_capacity(Libm::ALL.len());
        for f in Libm::ALL {
            let id = module
                .declare_function(
                    &format!("{libm_prefix}{}", f.base_name()),
                    Linkage::Import,
                    &f.signature(call_conv),
                )
                .map_err(|e| backend("", &e))?;
            libm.push(id);
        }
        let mut sig = module.make_signature();
        sig.params.extend([ptr, ptr, I64, I64].map(AbiParam::new));
        Ok(Lowerer {
            feat,
            libm,
            sig,
            ctx: module.make_context(),
            fctx: FunctionBuilderContext::new(),
            next: 0,
            disasm: std::env::var_os("MLC_JIT_DISASM").is_some(),
        })
    }

    /// Whether `a*b ± c` is fused into one `fma` (the option, where the target has FMA).
    pub(crate) fn fused_multiply_add(&self) -> bool {
        self.feat.fma
    }

    /// Lowers `k` and defines it in `module`: exported as `symbol` when given, anonymous
    /// otherwise. Returns its id and the number of loops emitted as SIMD code.
    ///
    /// A kernel the backend cannot lower is reported as [`JitError::Unsupported`] before
    /// anything is declared, so the module stays usable for the other kernels.
    pub(crate) fn define<M: Module>(
        &mut self,
        module: &mut M,
        k: &KernelFn,
        symbol: Option<&str>,
    ) -> Result<(FuncId, usize), JitError> {
        module.clear_context(&mut self.ctx);
        self.ctx.func.signature = self.sig.clone();
        self.ctx.func.name = UserFuncName::user(0, self.next);
        self.next += 1;
        let libm = self
            .libm
            .iter()
            .map(|&id| module.declare_func_in_func(id, &mut self.ctx.func))
            .collect();
        let vectorized = build(
            k,
            &mut self.ctx.func,
            &mut self.fctx,
            libm,
            self.feat,
            module.target_config(),
        )
        .map_err(|detail| JitError::Unsupported {
            kernel: k.name.clone(),
            detail,
        })?;
        let id = match symbol {
            Some(s) => module.declare_function(s, Linkage::Export, &self.sig),
            None => module.declare_anonymous_function(&self.sig),
        }
        .map_err(|e| backend(&k.name, &e))?;
        self.ctx.set_disasm(self.disasm);
        module
            .define_function(id, &mut self.ctx)
            .map_err(|e| backend(&k.name, &format!("{e:?}")))?;
        if self.disasm
            && let Some(vcode) = self.ctx.compiled_code().and_then(|c| c.vcode.as_ref())
        {
            eprintln!("; kernel {}\n{vcode}", k.name);
        }
        module.clear_context(&mut self.ctx);
        Ok((id, vectorized))
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
