//! Checking a plan once, before it runs, and what the executor precomputes per function:
//! constants, and after which step each buffer is dead.
//!
//! After [`prepare`] succeeds the executor may index buffers, kernels and loop bodies without
//! further checks: every id is in range, every kernel call fits its kernel, no step writes an
//! input, weight or constant, and every loop's body fits the loop.

use std::sync::Arc;

use mlc_ir::{Access, BufId, BufKind, FunctionPlan, KernelFn, Op, Origin, Step};

use crate::error::RuntimeError;
use crate::interp::{RunOptions, eval_op};
use crate::tensor::Tensor;

/// What the executor keeps per [`FunctionPlan`] (mirroring its loop structure).
#[derive(Debug, Default)]
pub struct PreparedFn {
    /// The value of each `Const` buffer.
    pub consts: Vec<Option<Arc<Tensor>>>,
    /// Per step: the buffers whose last use it is (freed after it; never an output).
    pub dead_after: Vec<Vec<BufId>>,
    /// Per step: the prepared body when the step is a loop.
    pub bodies: Vec<Option<PreparedFn>>,
}

pub fn plan_err(f: &FunctionPlan, message: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Plan {
        message: format!("`{}`: {message}", f.name),
    }
}

/// The buffers a step mentions, as (read, written); every buffer of a kernel counts as read
/// here (the kernel's own declarations are checked separately, against a kernel that may not
/// exist in a malformed plan).
pub fn step_bufs(step: &Step) -> (Vec<BufId>, Vec<BufId>) {
    step.reads_writes(&[])
}

/// Checks `f` against the module's kernels and precomputes its constants and buffer lifetimes.
pub fn prepare(f: &FunctionPlan, kernels: &[KernelFn]) -> Result<PreparedFn, RuntimeError> {
    let n = f.bufs.len();
    let check = |b: BufId, what: &str| {
        if (b as usize) < n {
            Ok(())
        } else {
            Err(plan_err(
                f,
                format!("{what} refers to buffer b{b}, but the plan has {n}"),
            ))
        }
    };
    for &b in &f.inputs {
        check(b, "an input")?;
        if f.bufs[b as usize].kind != BufKind::Input {
            return Err(plan_err(f, format!("input b{b} is not a buffer of kind input")));
        }
    }
    for (i, buf) in f.bufs.iter().enumerate() {
        if buf.kind == BufKind::Input && !f.inputs.contains(&(i as BufId)) {
            return Err(plan_err(f, format!("b{i} is an input buffer but not among the inputs")));
        }
    }
    for (_, b) in &f.outputs {
        check(*b, "an output")?;
    }
    let writable = |b: BufId, step: usize| {
        if f.bufs[b as usize].kind == BufKind::Temp {
            Ok(())
        } else {
            Err(plan_err(
                f,
                format!("step {step} writes b{b}, which is not a temporary"),
            ))
        }
    };
    let mut bodies = Vec::with_capacity(f.steps.len());
    for (s, step) in f.steps.iter().enumerate() {
        let (reads, writes) = step_bufs(step);
        for &b in reads.iter().chain(&writes) {
            check(b, &format!("step {s}"))?;
        }
        for &b in &writes {
            writable(b, s)?;
        }
        let mut body_prep = None;
        match step {
            Step::Kernel { kernel, bufs, dims } => {
                let k = kernels.get(*kernel as usize).ok_or_else(|| {
                    plan_err(
                        f,
                        format!("step {s} runs kernel {kernel}, but there are {}", kernels.len()),
                    )
                })?;
                if bufs.len() != k.bufs.len() || dims.len() != k.dims.len() {
                    return Err(plan_err(
                        f,
                        format!(
                            "step {s} passes {} buffers and {} dims to kernel `{}`, which takes {} and {}",
                            bufs.len(),
                            dims.len(),
                            k.name,
                            k.bufs.len(),
                            k.dims.len()
                        ),
                    ));
                }
                for (&b, kb) in bufs.iter().zip(&k.bufs) {
                    let ty = &f.bufs[b as usize].ty;
                    if ty.dtype != kb.dtype {
                        return Err(plan_err(
                            f,
                            format!(
                                "step {s} passes b{b}: {ty} as `{}`: {} of kernel `{}`",
                                kb.name, kb.dtype, k.name
                            ),
                        ));
                    }
                    if kb.access == Access::Write {
                        writable(b, s)?;
                    }
                }
            }
            Step::MatMul { out, .. } => {
                if step_bufs(step).0.contains(out) {
                    return Err(plan_err(
                        f,
                        format!("step {s}: a matrix product writes one of its operands"),
                    ));
                }
            }
            Step::Attention { out, .. } => {
                let (reads, _) = step_bufs(step);
                if reads.contains(out) {
                    return Err(plan_err(
                        f,
                        format!("step {s}: an attention writes one of its operands"),
                    ));
                }
                if f.bufs[*out as usize].ty.dtype != mlc_ir::DType::F32 {
                    return Err(plan_err(f, format!("step {s}: an attention writes a non-f32 buffer")));
                }
            }
            Step::Op { op, .. } => {
                if matches!(op, Op::Input { .. } | Op::Param { .. } | Op::Loop(_)) {
                    return Err(plan_err(f, format!("step {s}: `{}` is not a plain op", op.mnemonic())));
                }
            }
            Step::Loop {
                n_carried,
                has_stop,
                n_emit,
                operands,
                outputs,
                body,
                ..
            } => {
                let fits = *n_carried <= operands.len()
                    && body.inputs.len() == 1 + operands.len()
                    && body.outputs.len() == n_carried + usize::from(*has_stop) + n_emit
                    && outputs.len() == n_carried + n_emit;
                if !fits {
                    return Err(plan_err(
                        f,
                        format!(
                            "step {s}: a loop body with {} inputs and {} outputs does not fit {} operands, {} outputs, {} carried, {} emitted",
                            body.inputs.len(),
                            body.outputs.len(),
                            operands.len(),
                            outputs.len(),
                            n_carried,
                            n_emit
                        ),
                    ));
                }
                body_prep = Some(prepare(body, kernels)?);
            }
        }
        bodies.push(body_prep);
    }

    let opts = RunOptions::default();
    let consts = f
        .bufs
        .iter()
        .map(|b| match &b.kind {
            BufKind::Const(lit) => {
                let origin = Origin {
                    name: b.name.clone(),
                    loc: String::new(),
                };
                let mut t = eval_op(
                    &Op::Const(lit.clone()),
                    &origin,
                    &[],
                    std::slice::from_ref(&b.ty),
                    &Default::default(),
                    &opts,
                )
                .map_err(|e| plan_err(f, format!("constant `{}`: {e}", b.name)))?;
                Ok(t.pop().map(Arc::new))
            }
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>, RuntimeError>>()?;

    // The last step that mentions each buffer; outputs live to the end.
    let mut last: Vec<Option<usize>> = vec![None; n];
    for (s, step) in f.steps.iter().enumerate() {
        let (reads, writes) = step_bufs(step);
        for b in reads.into_iter().chain(writes) {
            last[b as usize] = Some(s);
        }
    }
    for (_, b) in &f.outputs {
        last[*b as usize] = None;
    }
    let mut dead_after = vec![Vec::new(); f.steps.len()];
    for (b, l) in last.iter().enumerate() {
        if let Some(s) = l {
            dead_after[*s].push(b as BufId);
        }
    }
    Ok(PreparedFn {
        consts,
        dead_after,
        bodies,
    })
}
