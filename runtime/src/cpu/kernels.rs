//! `Step::Kernel`: generated kernels, compiled by the Cranelift JIT ([`super::jit`]) and run
//! over their parallel range, split across threads when there is enough work. A kernel that is
//! a whole-kernel idiom with a hand-written routine (a row softmax or layer norm:
//! [`mlc_ir::row_softmax`], [`mlc_ir::row_layer_norm`]) runs that routine over the same ranges
//! instead of generated code.

use mlc_ir::{Access, BufId, Dim, KStmt, KernelFn, RowLayerNorm, RowSoftmax, row_layer_norm, row_softmax};

use super::buffers::BufferTable;
use super::exec::Exec;
use super::jit::JitModule;
use super::parallel::{SendPtr, chunk_count, parallel_for};
use crate::error::RuntimeError;

/// Statement executions (about a nanosecond each for simple vectorised statements) below which
/// a kernel runs inline on the caller: waking a worker takes tens of microseconds.
const MIN_PARALLEL_WORK: u64 = 1 << 17;

/// Statement executions per piece below which a kernel's range is not split further.
const MIN_PIECE_WORK: u64 = 1 << 15;

/// How one kernel of a plan runs.
enum KernelCode {
    /// The JIT module's kernel of this index.
    Jit(usize),
    /// `mlc_kernels::softmax` over the rows of the range.
    Softmax(RowSoftmax),
    /// `mlc_kernels::norm` over the rows of the range.
    LayerNorm(RowLayerNorm),
}

/// The compiled kernels of a plan, callable from any thread.
pub struct CompiledKernels {
    jit: Option<JitModule>,
    /// By the plan's kernel index.
    code: Vec<KernelCode>,
}

impl CompiledKernels {
    /// Compiles every kernel of a plan that has no hand-written routine (nothing to do when
    /// there are none).
    pub fn compile(kernels: &[KernelFn]) -> Result<CompiledKernels, RuntimeError> {
        let mut generated = Vec::new();
        let code = kernels
            .iter()
            .map(|k| {
                if let Some(s) = row_softmax(k) {
                    KernelCode::Softmax(s)
                } else if let Some(n) = row_layer_norm(k) {
                    KernelCode::LayerNorm(n)
                } else {
                    generated.push(k.clone());
                    KernelCode::Jit(generated.len() - 1)
                }
            })
            .collect();
        if generated.is_empty() {
            return Ok(CompiledKernels { jit: None, code });
        }
        let jit = JitModule::compile(&generated).map_err(|e| RuntimeError::Plan {
            message: format!("compiling the kernels: {e}"),
        })?;
        Ok(CompiledKernels { jit: Some(jit), code })
    }

    /// Runs kernel `i` for parallel indices `lo..hi`.
    ///
    /// # Safety
    /// `bufs` holds the base addresses of buffers of the kernel's dtypes, large enough for
    /// every element the kernel touches with these `dims`; buffers written are not read or
    /// written by anything else meanwhile, except by other chunks of the same call writing
    /// other elements.
    unsafe fn call(&self, i: u32, bufs: &[*mut u8], dims: &[i64], lo: i64, hi: i64) {
        match (self.code.get(i as usize), &self.jit) {
            // SAFETY: the caller's contract is the JIT's.
            (Some(KernelCode::Jit(j)), Some(jit)) => unsafe { jit.call(*j, bufs, dims, lo, hi) },
            (Some(KernelCode::Softmax(s)), _) => {
                let n = s.row_len.eval(&|_| 0, &|d| dims.get(d as usize).copied().unwrap_or(0));
                let Some((x, out, len, n)) = row_range(bufs, s.input, s.output, n, lo, hi) else {
                    return;
                };
                // SAFETY: the kernel reads and writes elements `lo*n .. hi*n` of its two f32
                // buffers (its rows `lo..hi`), which the caller's contract makes valid and this
                // call's alone to write; the routine allows the output to be the input exactly.
                unsafe {
                    if std::ptr::eq(x, out) {
                        mlc_kernels::softmax::softmax_rows_in_place(std::slice::from_raw_parts_mut(out, len), n);
                    } else {
                        let x = std::slice::from_raw_parts(x, len);
                        mlc_kernels::softmax::softmax_rows(x, std::slice::from_raw_parts_mut(out, len), n);
                    }
                }
            }
            (Some(KernelCode::LayerNorm(l)), _) => {
                let Some((x, out, len, n)) = row_range(bufs, l.input, l.output, l.row_len, lo, hi) else {
                    return;
                };
                // SAFETY: as for the softmax, and the kernel reads elements `0..n` of its weight
                // and bias buffers, which nothing writes meanwhile.
                unsafe {
                    let w = std::slice::from_raw_parts(bufs[l.weight as usize].cast::<f32>(), n);
                    let b = std::slice::from_raw_parts(bufs[l.bias as usize].cast::<f32>(), n);
                    if std::ptr::eq(x, out) {
                        let x = std::slice::from_raw_parts_mut(out, len);
                        mlc_kernels::norm::layer_norm_rows_in_place(x, w, b, l.eps, n);
                    } else {
                        let x = std::slice::from_raw_parts(x, len);
                        let out = std::slice::from_raw_parts_mut(out, len);
                        mlc_kernels::norm::layer_norm_rows(x, out, w, b, l.eps, n);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Rows `lo..hi` of `n` elements of the `f32` kernel buffers `input` and `output`: their
/// addresses, the element count and `n`; `None` for a negative count.
fn row_range(
    bufs: &[*mut u8],
    input: u32,
    output: u32,
    n: i64,
    lo: i64,
    hi: i64,
) -> Option<(*const f32, *mut f32, usize, usize)> {
    let (n, lo, hi) = (
        usize::try_from(n).ok()?,
        usize::try_from(lo).ok()?,
        usize::try_from(hi).ok()?,
    );
    let x = bufs[input as usize].cast::<f32>().wrapping_add(lo * n);
    let out = bufs[output as usize].cast::<f32>().wrapping_add(lo * n);
    Some((x, out, hi.saturating_sub(lo) * n, n))
}

/// An estimate of the statements one parallel index executes (loops multiply their bodies).
fn body_work(stmts: &[KStmt], dim: &impl Fn(u32) -> i64) -> u64 {
    stmts
        .iter()
        .map(|s| match s {
            KStmt::Loop { extent, body, .. } => {
                let n = extent.eval(&|_| 0, dim).max(0) as u64;
                n.saturating_mul(body_work(body, dim))
            }
            _ => 1,
        })
        .fold(0u64, u64::saturating_add)
}

impl Exec<'_> {
    /// Runs one `Step::Kernel`.
    pub(super) fn kernel(
        &self,
        table: &mut BufferTable,
        kernel: u32,
        bufs: &[BufId],
        dims: &[Dim],
    ) -> Result<(), RuntimeError> {
        let k = &self.kernel_fns()[kernel as usize];
        let dim_vals = dims
            .iter()
            .map(|d| {
                d.eval(self.bindings).map_err(|symbol| RuntimeError::UnboundDim {
                    symbol,
                    context: format!("kernel `{}`", k.name),
                })
            })
            .collect::<Result<Vec<i64>, _>>()?;
        // Written buffers first: making one writable may replace its storage, which would
        // invalidate an address taken before.
        let mut ptrs = vec![std::ptr::null_mut(); bufs.len()];
        for (j, (&b, kb)) in bufs.iter().zip(&k.bufs).enumerate() {
            if kb.access == Access::Write {
                ptrs[j] = table.write_ptr(b);
            }
        }
        for (j, (&b, kb)) in bufs.iter().zip(&k.bufs).enumerate() {
            if kb.access == Access::Read {
                ptrs[j] = table.read_ptr(b)?;
            }
        }
        let dim = |d: u32| dim_vals.get(d as usize).copied().unwrap_or(0);
        let extent = k.parallel.1.eval(&|_| 0, &dim);
        if extent <= 0 {
            return Ok(());
        }
        let chunks = chunk_count(
            self.threads,
            extent,
            body_work(&k.body, &dim),
            MIN_PARALLEL_WORK,
            MIN_PIECE_WORK,
        );
        let ptrs: Vec<SendPtr<u8>> = ptrs.into_iter().map(SendPtr).collect();
        let kernels = self.kernels();
        parallel_for(self.pool, chunks, extent, &|lo, hi| {
            let bufs: Vec<*mut u8> = ptrs.iter().map(|p| p.0).collect();
            // SAFETY: every buffer holds its declared type evaluated with the run's bindings
            // (the table's invariant), which is what the kernel was generated for; a written
            // buffer is this table's alone (an owned buffer, or its arena place, which no
            // buffer live at this step overlaps except an input the kernel reads only at the
            // element it writes: the memory plan's in-place rule), and chunks write disjoint
            // elements (parallel iterations are independent).
            unsafe { kernels.call(kernel, &bufs, &dim_vals, lo, hi) }
        });
        Ok(())
    }
}
