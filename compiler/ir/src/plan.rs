//! Execution plans: what the runtime runs for each entry point after fusion.
//!
//! A [`FunctionPlan`] is a list of [`Step`]s over numbered buffers. A step runs a generated
//! kernel (Kernel IR, see [`crate::kernel`]), calls a hand-written library routine (matrix
//! products), runs one Graph IR op through the runtime's reference implementation (ops that
//! have no generated code yet), or runs a loop whose body is a plan of its own. Buffers are
//! dense row-major tensors whose shapes may mention the entry's symbolic dims.

use std::fmt::Write as _;

use crate::graph::{Origin, TensorType};
use crate::kernel::{KernelFn, print_kernel};
use crate::op::{Literal, Op};
use crate::shape::Dim;

/// A buffer's index in its [`FunctionPlan`].
pub type BufId = u32;

/// An activation a matrix product applies to each element before storing it, with the Graph
/// IR semantics of the std function of that name (see `dsl/std/math.dsl`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    #[default]
    None,
    /// `x * 0.5 * (1 + erf(x / sqrt 2))`
    GeluErf,
    /// `x * sigmoid(x)`
    Silu,
    Tanh,
    Sigmoid,
}

impl Activation {
    /// The name in plan dumps.
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::GeluErf => "gelu",
            Activation::Silu => "silu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// What a matrix product does to `p = a @ b` before storing it, in this order:
/// `out[.., i, j] = activation(p[.., i, j] + bias[j]) + residual[.., i, j]`. Every part is
/// optional; the default stores the product as it is. Fusion moves a consumer kernel of that
/// form into the product (`mlc_sched`), so the product is never stored and reread.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatMulEpilogue {
    /// `f32[N]`, added to every row.
    pub bias: Option<BufId>,
    pub activation: Activation,
    /// `f32` with the output's shape, added last.
    pub residual: Option<BufId>,
}

impl MatMulEpilogue {
    /// True when the product is stored as it is.
    pub fn is_identity(&self) -> bool {
        self.bias.is_none() && self.activation == Activation::None && self.residual.is_none()
    }
}

/// Where a buffer's contents come from.
#[derive(Clone, Debug, PartialEq)]
pub enum BufKind {
    /// An input of the plan (for loop bodies: the index, carried and captured values).
    Input,
    /// A weight, by name.
    Param(String),
    /// A constant.
    Const(Literal),
    /// Computed by a step.
    Temp,
}

/// A buffer of a plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanBuf {
    pub ty: TensorType,
    pub kind: BufKind,
    /// The source binding it holds, for dumps and errors.
    pub name: String,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Runs `ModulePlan::kernels[kernel]` on `bufs` (in the kernel's buffer order); `dims[i]`
    /// gives the value of the kernel's dim `i` from the entry's bindings.
    Kernel {
        kernel: u32,
        bufs: Vec<BufId>,
        dims: Vec<Dim>,
    },
    /// `out = epilogue(a @ b)` with broadcast batch axes; when `b_transposed`, `b` holds
    /// `[..., N, K]` (the layout of a linear layer's weight) and is read transposed.
    MatMul {
        a: BufId,
        b: BufId,
        out: BufId,
        b_transposed: bool,
        epilogue: MatMulEpilogue,
        origin: Origin,
    },
    /// Scaled dot-product attention without the score matrix:
    /// `out = softmax(q @ k^T * scale + masks) @ v` with the semantics of
    /// `std.attention.attention` (a query row whose keys are all hidden gives 0). `q` is
    /// `[B, H, Tq, dh]`, `k` `[B, Hkv, Tk, dh]`, `v` `[B, Hkv, Tk, dv]` (`Hkv` divides `H`:
    /// grouped-query heads), `out` `[B, H, Tq, dv]`, all `f32`. `causal`: query `i` sees keys
    /// `j <= i + (Tk - Tq)`; `bool_mask` (true = may attend) and `additive_mask` (`f32`, added to
    /// the scaled scores) broadcast to `[B, H, Tq, Tk]` (rank at most 4, size-1 axes broadcast).
    Attention {
        q: BufId,
        k: BufId,
        v: BufId,
        out: BufId,
        scale: f32,
        causal: bool,
        bool_mask: Option<BufId>,
        additive_mask: Option<BufId>,
        origin: Origin,
    },
    /// One Graph IR op, run by the runtime's reference implementation of it.
    Op {
        op: Op,
        inputs: Vec<BufId>,
        outputs: Vec<BufId>,
        origin: Origin,
    },
    /// A loop (see [`crate::op::LoopOp`] for the semantics): `operands` are the initial carried
    /// values then the captured values; `outputs` the final carried values then the stacked
    /// emits. The body's inputs are the index, the carried and the captured values; its outputs
    /// the next carried values, the stop flag (if any) and the emits.
    Loop {
        trips: Dim,
        max_trips: u64,
        n_carried: usize,
        has_stop: bool,
        n_emit: usize,
        operands: Vec<BufId>,
        outputs: Vec<BufId>,
        body: Box<FunctionPlan>,
        origin: Origin,
    },
}

impl Step {
    /// Every buffer id the step names (not those of a loop's body, which has its own), for
    /// renumbering.
    pub fn buf_ids_mut(&mut self) -> Vec<&mut BufId> {
        match self {
            Step::Kernel { bufs, .. } => bufs.iter_mut().collect(),
            Step::MatMul {
                a, b, out, epilogue, ..
            } => {
                let mut ids = vec![a, b, out];
                ids.extend(epilogue.bias.as_mut());
                ids.extend(epilogue.residual.as_mut());
                ids
            }
            Step::Attention {
                q,
                k,
                v,
                out,
                bool_mask,
                additive_mask,
                ..
            } => {
                let mut ids = vec![q, k, v, out];
                ids.extend(bool_mask.as_mut());
                ids.extend(additive_mask.as_mut());
                ids
            }
            Step::Op { inputs, outputs, .. } => inputs.iter_mut().chain(outputs.iter_mut()).collect(),
            Step::Loop { operands, outputs, .. } => operands.iter_mut().chain(outputs.iter_mut()).collect(),
        }
    }

    /// The buffers the step reads and the buffers it writes. A kernel's buffers are split by the
    /// access its Kernel IR declares (`kernels` is the module plan's kernel table); when the
    /// kernel is not in `kernels` (an empty table, or a malformed plan) all of them count as
    /// read.
    pub fn reads_writes(&self, kernels: &[KernelFn]) -> (Vec<BufId>, Vec<BufId>) {
        match self {
            Step::Kernel { kernel, bufs, .. } => match kernels.get(*kernel as usize) {
                Some(k) if k.bufs.len() == bufs.len() => {
                    let (mut reads, mut writes) = (Vec::new(), Vec::new());
                    for (b, kb) in bufs.iter().zip(&k.bufs) {
                        if kb.access == crate::kernel::Access::Write {
                            writes.push(*b)
                        } else {
                            reads.push(*b)
                        }
                    }
                    (reads, writes)
                }
                _ => (bufs.clone(), Vec::new()),
            },
            Step::MatMul {
                a, b, out, epilogue, ..
            } => {
                let mut reads = vec![*a, *b];
                reads.extend(epilogue.bias.iter().chain(&epilogue.residual));
                (reads, vec![*out])
            }
            Step::Attention {
                q,
                k,
                v,
                out,
                bool_mask,
                additive_mask,
                ..
            } => {
                let mut reads = vec![*q, *k, *v];
                reads.extend(bool_mask.iter().chain(additive_mask));
                (reads, vec![*out])
            }
            Step::Op { inputs, outputs, .. } => (inputs.clone(), outputs.clone()),
            Step::Loop { operands, outputs, .. } => (operands.clone(), outputs.clone()),
        }
    }
}

/// The plan of one entry point (or loop body).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FunctionPlan {
    pub name: String,
    pub bufs: Vec<PlanBuf>,
    /// Buffers of kind `Input`, in input order.
    pub inputs: Vec<BufId>,
    pub outputs: Vec<(String, BufId)>,
    pub steps: Vec<Step>,
}

/// The plans of a module's entry points and the kernels they run.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ModulePlan {
    pub kernels: Vec<KernelFn>,
    pub functions: Vec<FunctionPlan>,
}

impl ModulePlan {
    /// The plan of the entry called `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionPlan> {
        self.functions.iter().find(|f| f.name == name)
    }
}

/// Prints a module plan: its kernels, then each function's buffers and steps.
pub fn print_plan(p: &ModulePlan) -> String {
    let mut out = String::new();
    for k in &p.kernels {
        out.push_str(&print_kernel(k));
        out.push('\n');
    }
    for f in &p.functions {
        print_function(p, f, 0, &mut out);
    }
    out
}

fn buf_list(ids: &[BufId]) -> String {
    ids.iter().map(|b| format!("b{b}")).collect::<Vec<_>>().join(", ")
}

fn print_function(p: &ModulePlan, f: &FunctionPlan, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let _ = writeln!(out, "{pad}plan {}({}) {{", f.name, buf_list(&f.inputs));
    for (i, b) in f.bufs.iter().enumerate() {
        let kind = match &b.kind {
            BufKind::Input => "input".to_string(),
            BufKind::Param(n) => format!("param {n}"),
            BufKind::Const(_) => "const".to_string(),
            BufKind::Temp => "temp".to_string(),
        };
        let name = if b.name.is_empty() {
            String::new()
        } else {
            format!("  # {}", b.name)
        };
        let _ = writeln!(out, "{pad}  b{i}: {} {kind}{name}", b.ty);
    }
    for s in &f.steps {
        match s {
            Step::Kernel { kernel, bufs, dims } => {
                let dims: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                let name = p.kernels.get(*kernel as usize).map_or("?", |k| k.name.as_str());
                let _ = writeln!(
                    out,
                    "{pad}  kernel {name}({}) dims({})",
                    buf_list(bufs),
                    dims.join(", ")
                );
            }
            Step::MatMul {
                a,
                b,
                out: o,
                b_transposed,
                epilogue: e,
                ..
            } => {
                let t = if *b_transposed { "ᵀ" } else { "" };
                let mut x = format!("matmul b{a}, b{b}{t}");
                if let Some(bias) = e.bias {
                    x = format!("{x} + b{bias}");
                }
                if e.activation != Activation::None {
                    x = format!("{}({x})", e.activation.name());
                }
                if let Some(r) = e.residual {
                    x = format!("{x} + b{r}");
                }
                let _ = writeln!(out, "{pad}  b{o} = {x}");
            }
            Step::Attention {
                q,
                k,
                v,
                out: o,
                scale,
                causal,
                bool_mask,
                additive_mask,
                ..
            } => {
                let mut extra = format!("scale={scale:?}");
                if *causal {
                    extra.push_str(", causal");
                }
                if let Some(m) = bool_mask {
                    let _ = write!(extra, ", mask=b{m}");
                }
                if let Some(m) = additive_mask {
                    let _ = write!(extra, ", add=b{m}");
                }
                let _ = writeln!(out, "{pad}  b{o} = attention b{q}, b{k}, b{v} ({extra})");
            }
            Step::Op {
                op, inputs, outputs, ..
            } => {
                let _ = writeln!(
                    out,
                    "{pad}  {} = op {} {}",
                    buf_list(outputs),
                    op.mnemonic(),
                    buf_list(inputs)
                );
            }
            Step::Loop {
                trips,
                max_trips,
                operands,
                outputs,
                body,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "{pad}  {} = loop(trips={trips}, max={max_trips}) {} {{",
                    buf_list(outputs),
                    buf_list(operands)
                );
                print_function(p, body, depth + 2, out);
                let _ = writeln!(out, "{pad}  }}");
            }
        }
    }
    let outs: Vec<String> = f.outputs.iter().map(|(n, b)| format!("{n} = b{b}")).collect();
    let _ = writeln!(out, "{pad}  return {}", outs.join(", "));
    let _ = writeln!(out, "{pad}}}");
}
