//! Running a [`ModulePlan`] on the CPU: [`Program`] holds a checked plan with its compiled
//! kernels and runs entry points; [`Exec`] is one run, stepping through a plan's steps over a
//! [`BufferTable`].

use std::cell::RefCell;
use std::sync::Arc;

use mlc_ir::{Bindings, BufId, BufKind, FunctionPlan, ModulePlan, Op, Origin, Step, TensorType};
use mlc_kernels::ThreadPool;

use super::arena::{Arena, FnLayout, LoopLayout};
use super::attention::AttnBufs;
use super::buffers::BufferTable;
use super::kernels::CompiledKernels;
use super::prepare::{PreparedFn, plan_err, prepare};
use super::storage::{Storage, View};
use crate::error::RuntimeError;
use crate::interp::{RunOptions, bind_declared_refs, eval_op, format_origin};
use crate::tensor::{Data, Tensor};
use crate::weights::{WeightError, Weights};

/// The number of cores available to this process (1 if unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A module plan ready to run on the CPU: checked, its kernels compiled, its constants built.
/// Immutable once built, so one program serves any number of concurrent runs.
pub struct Program {
    plan: ModulePlan,
    prepared: Vec<PreparedFn>,
    kernels: CompiledKernels,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field(
                "functions",
                &self.plan.functions.iter().map(|f| &f.name).collect::<Vec<_>>(),
            )
            .field("kernels", &self.plan.kernels.len())
            .finish()
    }
}

impl Program {
    /// Checks `plan` (see [`RuntimeError::Plan`]) and compiles its kernels.
    pub fn new(plan: ModulePlan) -> Result<Program, RuntimeError> {
        let prepared = plan
            .functions
            .iter()
            .map(|f| prepare(f, &plan.kernels))
            .collect::<Result<Vec<_>, _>>()?;
        let kernels = CompiledKernels::compile(&plan.kernels)?;
        Ok(Program {
            plan,
            prepared,
            kernels,
        })
    }

    /// The plan this program runs.
    pub fn plan(&self) -> &ModulePlan {
        &self.plan
    }

    /// Runs the entry point `entry` on named inputs with the given weights, splitting steps
    /// over the threads of `pool`, with intermediate buffers in `arena` (laid out for these
    /// bindings once, then reused).
    ///
    /// Inputs are checked as the interpreter checks them (every declared input exactly once,
    /// with its dtype, rank and static dims; symbolic dims bound from their shapes), and read
    /// in place. The outputs are fresh allocations, or reuse those of `spare` that have their
    /// dtype and element count.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        entry: &str,
        weights: &Weights,
        inputs: &[(String, Tensor)],
        opts: &RunOptions,
        pool: &ThreadPool,
        arena: &mut Arena,
        spare: Vec<Data>,
    ) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        let Some(index) = self.plan.functions.iter().position(|f| f.name == entry) else {
            return Err(RuntimeError::UnknownEntry {
                entry: entry.to_string(),
                available: self
                    .plan
                    .functions
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let f = &self.plan.functions[index];
        let declared: Vec<(&str, &TensorType)> = f
            .inputs
            .iter()
            .map(|&b| {
                let buf = &f.bufs[b as usize];
                (buf.name.as_str(), &buf.ty)
            })
            .collect();
        let (bindings, args) = bind_declared_refs(&declared, inputs, opts.max_elements)?;
        let layout = arena.layout(&self.plan, index, f, &bindings, opts)?;
        let exec = Exec {
            program: self,
            weights,
            bindings: &bindings,
            opts,
            pool,
            threads: pool.num_threads(),
            arena: arena.base(),
            spare: RefCell::new(spare),
        };
        let main = &layout.main;
        let args = args
            .into_iter()
            .zip(&f.inputs)
            // SAFETY: the caller's inputs outlive the run, and no view escapes it (the outputs
            // are owned tensors); nothing writes an input (`prepare` checks).
            .map(|(t, &b)| Storage::View(unsafe { View::of_tensor(t, main.shapes[b as usize].clone()) }))
            .collect();
        // SAFETY: the arena holds `layout.bytes` bytes (`Arena::layout` grew it) and this run
        // has it to itself (`&mut`).
        let outs = unsafe { exec.run_function(f, &self.prepared[index], main, 0, args)? };
        Ok(f.outputs
            .iter()
            .zip(outs)
            .map(|((name, _), s)| {
                (
                    name.clone(),
                    s.into_tensor().unwrap_or_else(|| unreachable!("outputs are set")),
                )
            })
            .collect())
    }
}

/// One run of a program: what every step shares.
pub(super) struct Exec<'a> {
    pub program: &'a Program,
    pub weights: &'a Weights,
    pub bindings: &'a Bindings,
    pub opts: &'a RunOptions,
    pub pool: &'a ThreadPool,
    /// The pool's thread count, for deciding how finely to split a step.
    pub threads: usize,
    /// The session's arena; every plan's region is at an offset from it.
    pub arena: *mut u8,
    /// Allocations the entry's outputs may reuse.
    pub spare: RefCell<Vec<Data>>,
}

impl Exec<'_> {
    /// The compiled kernels of the program.
    pub fn kernels(&self) -> &CompiledKernels {
        &self.program.kernels
    }

    /// The plan's kernels (their Kernel IR).
    pub fn kernel_fns(&self) -> &[mlc_ir::KernelFn] {
        &self.program.plan.kernels
    }

    /// Runs a plan (an entry or a loop body) on argument values that have the types of its
    /// inputs (the caller checked them), with its arena region at offset `base`; returns its
    /// outputs in order (an output that is in the arena stays a view of it).
    ///
    /// # Safety
    /// The arena is valid for `base + layout.peak` bytes and those of `layout`'s loops, and
    /// nothing else uses this region meanwhile; `args` do not point into it.
    pub unsafe fn run_function(
        &self,
        f: &FunctionPlan,
        pf: &PreparedFn,
        layout: &FnLayout,
        base: usize,
        args: Vec<Storage>,
    ) -> Result<Vec<Storage>, RuntimeError> {
        // SAFETY: the caller's contract.
        let mut table = unsafe { BufferTable::new(f, layout, self.arena.add(base), &self.spare) };
        if args.len() != f.inputs.len() {
            return Err(plan_err(
                f,
                format!("{} arguments for {} inputs", args.len(), f.inputs.len()),
            ));
        }
        for (&b, s) in f.inputs.iter().zip(args) {
            table
                .set(b, s)
                .map_err(|found| plan_err(f, format!("input b{b} expects {}, got {found}", table.declared(b))))?;
        }
        for (i, buf) in f.bufs.iter().enumerate() {
            let b = i as BufId;
            match &buf.kind {
                BufKind::Param(name) => {
                    let t = self
                        .weights
                        .get_shared(name)
                        .ok_or_else(|| RuntimeError::MissingWeight {
                            name: name.clone(),
                            at: format!(" in `{}`", f.name),
                        })?;
                    table.set(b, Storage::Host(t)).map_err(|found| {
                        RuntimeError::Weights(vec![WeightError::Mismatch {
                            name: name.clone(),
                            expected: table.declared(b),
                            found,
                        }])
                    })?;
                }
                BufKind::Const(_) => {
                    let t = pf.consts[i]
                        .clone()
                        .ok_or_else(|| plan_err(f, format!("constant b{b} has no value")))?;
                    table.set(b, Storage::Host(t)).map_err(|found| {
                        plan_err(f, format!("constant b{b} is {found}, declared {}", table.declared(b)))
                    })?;
                }
                BufKind::Input | BufKind::Temp => {}
            }
        }
        for (s, step) in f.steps.iter().enumerate() {
            self.step(&mut table, step, pf.bodies[s].as_ref(), layout.loops[s].as_ref())?;
            for &b in &pf.dead_after[s] {
                table.free(b);
            }
        }
        // Outputs are moved out of their slots; a buffer returned twice is shared.
        let mut outs: Vec<Storage> = Vec::with_capacity(f.outputs.len());
        for (k, &(_, b)) in f.outputs.iter().enumerate() {
            let s = match f.outputs[..k].iter().position(|&(_, e)| e == b) {
                Some(first) => outs[first].clone(),
                None => table.take(b)?,
            };
            outs.push(s);
        }
        Ok(outs)
    }

    fn step(
        &self,
        table: &mut BufferTable,
        step: &Step,
        body: Option<&PreparedFn>,
        body_layout: Option<&LoopLayout>,
    ) -> Result<(), RuntimeError> {
        match step {
            Step::Kernel { kernel, bufs, dims } => self.kernel(table, *kernel, bufs, dims),
            Step::MatMul {
                a,
                b,
                out,
                b_transposed,
                epilogue,
                origin,
            } => self.matmul(table, (*a, *b, *out), *b_transposed, epilogue, origin),
            Step::Attention {
                q,
                k,
                v,
                out,
                scale,
                causal,
                bool_mask,
                additive_mask,
                origin,
            } => {
                let bufs = AttnBufs {
                    q: *q,
                    k: *k,
                    v: *v,
                    out: *out,
                    bool_mask: *bool_mask,
                    additive_mask: *additive_mask,
                };
                self.attention(table, &bufs, *scale, *causal, origin)
            }
            Step::Op {
                op,
                inputs,
                outputs,
                origin,
            } => {
                if let (Op::Concat { axis }, [out]) = (op, outputs.as_slice())
                    && self.concat(table, *axis, inputs, *out)?
                {
                    return Ok(());
                }
                let args = inputs.iter().map(|&b| table.tensor(b)).collect::<Result<Vec<_>, _>>()?;
                let types: Vec<TensorType> = outputs.iter().map(|&b| table.ty(b).clone()).collect();
                let results = eval_op(op, origin, &args, &types, self.bindings, self.opts)?;
                for (&b, t) in outputs.iter().zip(results) {
                    table
                        .set(b, Storage::Host(Arc::new(t)))
                        .map_err(|found| self.result_err(op.mnemonic(), origin, table, b, found))?;
                }
                Ok(())
            }
            Step::Loop { .. } => {
                let (Some(body), Some(body_layout)) = (body, body_layout) else {
                    return Err(RuntimeError::Plan {
                        message: "a loop step was not prepared".into(),
                    });
                };
                self.run_loop(table, step, body, body_layout)
            }
        }
    }

    /// A step's result that is not its buffer's type.
    pub fn result_err(
        &self,
        op: &'static str,
        origin: &Origin,
        table: &BufferTable,
        b: BufId,
        found: String,
    ) -> RuntimeError {
        RuntimeError::ResultType {
            op,
            at: format_origin(origin),
            index: 0,
            expected: table.declared(b),
            found,
        }
    }
}
