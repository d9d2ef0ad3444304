//! The reference interpreter of the Graph IR: the oracle every backend is compared with.
//!
//! It is written for obvious correctness, not speed: every op is plain index arithmetic over
//! row-major host tensors. Semantics, where the IR leaves a choice:
//!
//! - Floats compute in `f32` and round to the result dtype on store (`f16`/`bf16` through
//!   `half`, round to nearest even). Reductions, matmul and cumsum accumulate in `f64`, in
//!   row-major order, and round once.
//! - Integers compute in `i64` with wrapping arithmetic; `i32` results wrap. `div` floors and
//!   `rem` takes the sign of the divisor (Python); dividing by zero is an error; a negative
//!   integer exponent in `pow` is an error.
//! - `max`/`min` (binary and reductions) follow `f32::max`/`f32::min`: a NaN operand is ignored.
//!   `argmax`/`argmin` return the first NaN if there is one (numpy), else the first extreme.
//!   `topk` orders NaN above everything, ties to the lower index.
//! - `round` rounds half to even; `sign(±0) = ±0`, `sign(NaN) = NaN`.
//! - Gather/take/scatter indices must lie in `[0, n)`; `dynamic_slice` and
//!   `dynamic_update_slice` clamp the start to `[0, n - size]`.
//! - Every value is checked against its node's declared type (dims evaluated with the bindings
//!   from the inputs), so a graph whose symbolic shapes disagree at run time fails with an
//!   error naming the op instead of computing garbage. The interpreter never panics.

mod control;
pub(crate) mod elementwise;
mod index;
mod layout;
mod math;
mod matmul;
mod movement;
mod reduce;
mod source;

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mlc_ir::{Bindings, Dim, Graph, Module, Node, NodeId, Op, Origin, TensorType};

use crate::error::RuntimeError;
use crate::tensor::Tensor;
use crate::weights::Weights;

pub use math::erf;

/// Limits for a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The largest number of elements any single value may have (default `2^30`); a graph
    /// whose evaluated shapes exceed it fails with [`RuntimeError::TooLarge`] instead of
    /// exhausting memory.
    pub max_elements: usize,
    /// The most bytes a CPU session's arena (the memory of every intermediate buffer of a
    /// run, see [`crate::cpu::arena`]) may take (default `2^34`, 16 GiB); a layout that needs
    /// more fails with [`RuntimeError::ArenaTooLarge`] before anything is allocated. The
    /// interpreter has no arena: there, `max_elements` bounds each value.
    pub max_arena_bytes: usize,
    /// The most iterations any one loop may run (default `2^24`), on top of the `max` each
    /// loop declares; more fails with [`RuntimeError::TripLimit`] before the first iteration.
    pub max_loop_trips: u64,
    /// Stop at the first node whose result holds a NaN or an infinity, with an error that
    /// names the op and its source location ([`RuntimeError::NonFinite`]).
    pub check_numerics: bool,
}

impl RunOptions {
    /// The default of [`RunOptions::max_elements`].
    pub const DEFAULT_MAX_ELEMENTS: usize = 1 << 30;
    /// The default of [`RunOptions::max_arena_bytes`].
    pub const DEFAULT_MAX_ARENA_BYTES: usize = 1 << 34;
    /// The default of [`RunOptions::max_loop_trips`].
    pub const DEFAULT_MAX_LOOP_TRIPS: u64 = 1 << 24;
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        RunOptions {
            max_elements: RunOptions::DEFAULT_MAX_ELEMENTS,
            max_arena_bytes: RunOptions::DEFAULT_MAX_ARENA_BYTES,
            max_loop_trips: RunOptions::DEFAULT_MAX_LOOP_TRIPS,
            check_numerics: false,
        }
    }
}

/// Runs the entry point `entry` of `module` on named inputs and returns its named outputs.
///
/// Symbolic dims are bound from the input shapes; every input must be given exactly once, with
/// the declared dtype and rank.
pub fn run(
    module: &Module,
    entry: &str,
    weights: &Weights,
    inputs: &[(String, Tensor)],
    opts: &RunOptions,
) -> Result<Vec<(String, Tensor)>, RuntimeError> {
    let function = module.function(entry).ok_or_else(|| RuntimeError::UnknownEntry {
        entry: entry.to_string(),
        available: module
            .functions
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let graph = &function.graph;
    let (bindings, args) = bind_inputs(graph, inputs, opts.max_elements)?;
    let ctx = Ctx { weights, opts };
    let results = eval_graph(&ctx, graph, &bindings, args)?;
    Ok(graph
        .outputs
        .iter()
        .zip(results)
        .map(|((name, _), t)| (name.clone(), Arc::unwrap_or_clone(t)))
        .collect())
}

/// Fails with [`RuntimeError::TooLarge`] if the product of the axes of `shape`, counting axes
/// of size 0 as 1, exceeds `limit`. Counting empty axes as 1 bounds every loop over the
/// other axes of an empty tensor too.
pub(crate) fn check_extent(shape: &[usize], limit: usize, op: &'static str, at: &str) -> Result<(), RuntimeError> {
    let extent = shape.iter().fold(1u128, |a, &d| a.saturating_mul(d.max(1) as u128));
    if extent > limit as u128 {
        return Err(RuntimeError::TooLarge {
            op,
            at: at.to_string(),
            shape: shape.to_vec(),
            limit,
        });
    }
    Ok(())
}

/// Evaluates a symbolic shape; `context` names what the shape belongs to in errors.
pub fn eval_shape(shape: &[Dim], bindings: &Bindings, context: &str) -> Result<Vec<usize>, RuntimeError> {
    shape.iter().map(|d| eval_dim(d, bindings, context)).collect()
}

/// Evaluates one dimension to a size; unbound symbols and negative sizes are errors.
pub fn eval_dim(d: &Dim, bindings: &Bindings, context: &str) -> Result<usize, RuntimeError> {
    let v = d.eval(bindings).map_err(|symbol| RuntimeError::UnboundDim {
        symbol,
        context: context.to_string(),
    })?;
    usize::try_from(v).map_err(|_| RuntimeError::NegativeDim {
        dim: d.to_string(),
        value: v,
        context: context.to_string(),
    })
}

fn input_name(node: &Node) -> &str {
    match &node.op {
        Op::Input { name } => name,
        _ => &node.origin.name,
    }
}

/// Checks the given inputs against the graph's and binds the symbolic dims.
fn bind_inputs(
    graph: &Graph,
    inputs: &[(String, Tensor)],
    limit: usize,
) -> Result<(Bindings, Vec<Arc<Tensor>>), RuntimeError> {
    let declared: Vec<(&str, &TensorType)> = graph
        .inputs
        .iter()
        .map(|&id| {
            let node = graph.dag.node_weight(id);
            let ty = node.and_then(|n| n.outputs.first());
            match (node, ty) {
                (Some(node), Some(ty)) => Ok((input_name(node), ty)),
                _ => Err(RuntimeError::Op {
                    op: "input",
                    at: String::new(),
                    message: format!("graph input {} is not an input node with a type", id.index()),
                }),
            }
        })
        .collect::<Result<Vec<(&str, &TensorType)>, RuntimeError>>()?;
    bind_declared(&declared, inputs, limit)
}

/// Checks named inputs against declared `(name, type)` pairs (every declared input given
/// exactly once, with its dtype, rank and static dims), binds the symbolic dims from their
/// shapes and checks compound dims. Returns the bindings and the inputs in declared order.
/// Shared by the interpreter and the plan executors.
pub(crate) fn bind_declared(
    declared: &[(&str, &TensorType)],
    inputs: &[(String, Tensor)],
    limit: usize,
) -> Result<(Bindings, Vec<Arc<Tensor>>), RuntimeError> {
    let (bindings, args) = bind_declared_refs(declared, inputs, limit)?;
    Ok((bindings, args.into_iter().map(|t| Arc::new(t.clone())).collect()))
}

/// [`bind_declared`] returning the caller's tensors instead of copies (the CPU executor reads
/// its inputs in place).
pub(crate) fn bind_declared_refs<'t>(
    declared: &[(&str, &TensorType)],
    inputs: &'t [(String, Tensor)],
    limit: usize,
) -> Result<(Bindings, Vec<&'t Tensor>), RuntimeError> {
    let expected_list = || {
        let parts: Vec<String> = declared.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        parts.join(", ")
    };
    let mut given: HashMap<&str, &Tensor> = HashMap::new();
    for (name, t) in inputs {
        if !declared.iter().any(|(n, _)| n == name) || given.insert(name, t).is_some() {
            return Err(RuntimeError::UnexpectedInput {
                name: name.clone(),
                expected: expected_list(),
            });
        }
    }
    let mut bindings = Bindings::new();
    let mut bound_by: HashMap<String, String> = HashMap::new();
    let mut args = Vec::with_capacity(declared.len());
    for (name, ty) in declared {
        let t = *given.get(name).ok_or_else(|| RuntimeError::MissingInput {
            name: name.to_string(),
            expected: ty.to_string(),
        })?;
        let type_err = || RuntimeError::InputType {
            name: name.to_string(),
            expected: ty.to_string(),
            found: t.type_string(),
        };
        if t.dtype() != ty.dtype || t.rank() != ty.rank() {
            return Err(type_err());
        }
        check_extent(t.shape(), limit, "input", &format!(" `{name}`"))?;
        for (d, &actual) in ty.shape.iter().zip(t.shape()) {
            let symbols = d.symbols();
            if let Some(c) = d.as_const() {
                if c != actual as i64 {
                    return Err(type_err());
                }
            } else if symbols.len() == 1 && *d == Dim::sym(&symbols[0]) {
                let s = &symbols[0];
                match bindings.get(s) {
                    Some(&b) if b != actual as i64 => {
                        return Err(RuntimeError::DimConflict {
                            name: name.to_string(),
                            symbol: s.clone(),
                            value: actual as i64,
                            bound_by: bound_by[s].clone(),
                            bound: b,
                        });
                    }
                    Some(_) => {}
                    None => {
                        bindings.insert(s.clone(), actual as i64);
                        bound_by.insert(s.clone(), name.to_string());
                    }
                }
            }
        }
        args.push(t);
    }
    // Compound dims (`B*T`, `N + 1`) are checked once every plain symbol is bound.
    for ((name, ty), t) in declared.iter().zip(&args) {
        let shape = eval_shape(&ty.shape, &bindings, &format!("input `{name}`"))?;
        if shape != t.shape() {
            return Err(RuntimeError::InputType {
                name: name.to_string(),
                expected: format!("{ty} = {shape:?}"),
                found: t.type_string(),
            });
        }
    }
    Ok((bindings, args))
}

/// What every node evaluation shares.
struct Ctx<'a> {
    weights: &'a Weights,
    opts: &'a RunOptions,
}

/// The node being evaluated, for error messages and shape evaluation.
pub(crate) struct NodeCx<'a> {
    pub op: &'static str,
    pub at: String,
    pub bindings: &'a Bindings,
    pub max_elements: usize,
}

/// Formats an origin as `` at `name @ loc` `` for error messages (empty if unknown).
pub(crate) fn format_origin(o: &Origin) -> String {
    match (o.name.is_empty(), o.loc.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(" at `{}`", o.name),
        (true, false) => format!(" at {}", o.loc),
        (false, false) => format!(" at `{} @ {}`", o.name, o.loc),
    }
}

impl NodeCx<'_> {
    /// A generic op error.
    pub fn err(&self, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Op {
            op: self.op,
            at: self.at.clone(),
            message: message.into(),
        }
    }

    /// An out-of-range index error.
    pub fn index_err(&self, index: i64, axis: usize, size: usize) -> RuntimeError {
        RuntimeError::IndexOutOfRange {
            op: self.op,
            at: self.at.clone(),
            index,
            axis,
            size,
        }
    }

    /// Evaluates a dim attribute of the op.
    pub fn dim(&self, d: &Dim) -> Result<usize, RuntimeError> {
        eval_dim(d, self.bindings, &format!("`{}`{}", self.op, self.at))
    }

    /// Evaluates a shape attribute of the op and checks it against the element limit.
    pub fn shape(&self, s: &[Dim]) -> Result<Vec<usize>, RuntimeError> {
        let shape = eval_shape(s, self.bindings, &format!("`{}`{}", self.op, self.at))?;
        self.check_size(&shape)?;
        Ok(shape)
    }

    /// Fails if a result of this shape would exceed the element limit.
    pub fn check_size(&self, shape: &[usize]) -> Result<(), RuntimeError> {
        check_extent(shape, self.max_elements, self.op, &self.at)
    }
}

/// Evaluates a graph on argument values (one per `graph.inputs`), returning its outputs.
fn eval_graph(
    ctx: &Ctx,
    graph: &Graph,
    bindings: &Bindings,
    args: Vec<Arc<Tensor>>,
) -> Result<Vec<Arc<Tensor>>, RuntimeError> {
    let order = graph.topo_order().map_err(|n| RuntimeError::Cycle(n.index()))?;
    // Only nodes the outputs depend on run (as in every backend, after dead-code removal).
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = graph.outputs.iter().map(|(_, v)| v.node).collect();
    while let Some(n) = stack.pop() {
        if graph.dag.contains_node(n) && live.insert(n) {
            stack.extend(graph.operands(n).into_iter().map(|v| v.node));
        }
    }
    let order: Vec<NodeId> = order.into_iter().filter(|n| live.contains(n)).collect();
    let input_pos: HashMap<NodeId, usize> = graph.inputs.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    // Remaining uses of each node's values, so that intermediates are dropped early.
    let mut uses: HashMap<NodeId, usize> = HashMap::new();
    for &id in &order {
        for v in graph.operands(id) {
            *uses.entry(v.node).or_default() += 1;
        }
    }
    for (_, v) in &graph.outputs {
        *uses.entry(v.node).or_default() += 1;
    }
    let mut env: HashMap<NodeId, Vec<Arc<Tensor>>> = HashMap::new();
    for id in order {
        let node = graph.node(id);
        let cx = NodeCx {
            op: node.op.mnemonic(),
            at: format_origin(&node.origin),
            bindings,
            max_elements: ctx.opts.max_elements,
        };
        let operand_values = graph.operands(id);
        let mut operands = Vec::with_capacity(operand_values.len());
        for v in &operand_values {
            let t = env.get(&v.node).and_then(|vals| vals.get(v.index as usize));
            operands.push(
                t.cloned()
                    .ok_or_else(|| cx.err(format!("operand {} has no value", operands.len())))?,
            );
        }
        let results = match &node.op {
            Op::Input { .. } => {
                let arg = input_pos.get(&id).and_then(|&i| args.get(i));
                vec![
                    arg.cloned()
                        .ok_or_else(|| cx.err("input node is not among the graph's inputs"))?,
                ]
            }
            Op::Param { name } => vec![
                ctx.weights
                    .get_shared(name)
                    .ok_or_else(|| RuntimeError::MissingWeight {
                        name: name.clone(),
                        at: cx.at.clone(),
                    })?,
            ],
            Op::Loop(l) => control::eval_loop(ctx, &cx, l, &operands)?,
            op => dispatch(&cx, op, &operands)?.into_iter().map(Arc::new).collect(),
        };
        check_results(&cx, &node.outputs, &results)?;
        if ctx.opts.check_numerics {
            check_finite(&cx, &results)?;
        }
        for v in &operand_values {
            if let Some(n) = uses.get_mut(&v.node) {
                *n -= 1;
                if *n == 0 {
                    env.remove(&v.node);
                }
            }
        }
        if uses.get(&id).copied().unwrap_or(0) > 0 {
            env.insert(id, results);
        }
    }
    graph
        .outputs
        .iter()
        .map(|(name, v)| {
            env.get(&v.node)
                .and_then(|vals| vals.get(v.index as usize))
                .cloned()
                .ok_or_else(|| RuntimeError::Op {
                    op: "output",
                    at: format!(" `{name}`"),
                    message: "the output refers to a value that does not exist".into(),
                })
        })
        .collect()
}

/// Fails on the first NaN or infinity among a node's float results.
fn check_finite(cx: &NodeCx, results: &[Arc<Tensor>]) -> Result<(), RuntimeError> {
    for (r, t) in results.iter().enumerate() {
        if !t.dtype().is_float() {
            continue;
        }
        if let Some((i, x)) = t.to_f64_vec().into_iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(RuntimeError::NonFinite {
                op: cx.op,
                at: cx.at.clone(),
                value: if x.is_nan() { "NaN".into() } else { format!("{x}") },
                result: r,
                index: i,
            });
        }
    }
    Ok(())
}

/// Checks each result against the node's declared type.
fn check_results<T: Borrow<Tensor>>(cx: &NodeCx, declared: &[TensorType], results: &[T]) -> Result<(), RuntimeError> {
    if declared.len() != results.len() {
        return Err(cx.err(format!(
            "produced {} results, but the node declares {}",
            results.len(),
            declared.len()
        )));
    }
    for (index, (ty, t)) in declared.iter().zip(results).enumerate() {
        let t: &Tensor = t.borrow();
        let evaluated = eval_shape(&ty.shape, cx.bindings, &format!("`{}`{}", cx.op, cx.at))?;
        cx.check_size(t.shape())?;
        if t.dtype() != ty.dtype || t.shape() != evaluated.as_slice() {
            return Err(RuntimeError::ResultType {
                op: cx.op,
                at: cx.at.clone(),
                index,
                expected: format!("{ty} = {evaluated:?}"),
                found: t.type_string(),
            });
        }
    }
    Ok(())
}

fn arity(cx: &NodeCx, operands: &[Arc<Tensor>], n: usize) -> Result<(), RuntimeError> {
    if operands.len() != n {
        return Err(cx.err(format!("expects {n} operand(s), got {}", operands.len())));
    }
    Ok(())
}

/// Evaluates one Graph IR op on its operands, as the interpreter evaluates a node whose op it
/// is, and checks each result against `out_types` (dims evaluated with `bindings`). `origin`
/// names the op in errors. Inputs, params and loops are not plain ops and are refused; plans
/// run loops themselves (`Step::Loop`).
///
/// This is how plan executors run `Step::Op` (ops without generated code).
pub fn eval_op(
    op: &Op,
    origin: &Origin,
    inputs: &[Arc<Tensor>],
    out_types: &[TensorType],
    bindings: &Bindings,
    opts: &RunOptions,
) -> Result<Vec<Tensor>, RuntimeError> {
    let cx = NodeCx {
        op: op.mnemonic(),
        at: format_origin(origin),
        bindings,
        max_elements: opts.max_elements,
    };
    let results = dispatch(&cx, op, inputs)?;
    check_results(&cx, out_types, &results)?;
    Ok(results)
}

/// Evaluates every op but inputs, params and loops.
fn dispatch(cx: &NodeCx, op: &Op, x: &[Arc<Tensor>]) -> Result<Vec<Tensor>, RuntimeError> {
    let n = match op {
        Op::Const(_) | Op::DimSize(_) | Op::Iota { .. } => 0,
        Op::Unary(_) | Op::Cast(_) | Op::Reduce { .. } | Op::ArgReduce { .. } | Op::Reshape(_) => 1,
        Op::Permute(_) | Op::Expand(_) | Op::Slice { .. } | Op::Pad { .. } | Op::Cumsum { .. } => 1,
        Op::TopK { .. } => 1,
        Op::Binary(_) | Op::MatMul | Op::Gather { .. } | Op::Take { .. } | Op::DynamicSlice { .. } => 2,
        Op::RngUniform { .. } => 2,
        Op::Select | Op::Scatter { .. } | Op::DynamicUpdateSlice { .. } => 3,
        Op::Concat { .. } if x.is_empty() => return Err(cx.err("needs at least one operand")),
        Op::Concat { .. } => x.len(),
        Op::Input { .. } | Op::Param { .. } | Op::Loop(_) => return Err(cx.err("not a plain op")),
    };
    arity(cx, x, n)?;
    let one = |t: Result<Tensor, RuntimeError>| t.map(|t| vec![t]);
    match op {
        Op::Const(lit) => one(source::constant(cx, lit)),
        Op::DimSize(d) => one(source::dim_size(cx, d)),
        Op::Iota { shape, axis, dtype } => one(source::iota(cx, shape, *axis, *dtype)),
        Op::RngUniform { shape } => one(source::rng_uniform(cx, shape, &x[0], &x[1])),
        Op::Unary(u) => one(elementwise::unary(cx, *u, &x[0])),
        Op::Binary(b) => one(elementwise::binary(cx, *b, &x[0], &x[1])),
        Op::Select => one(elementwise::select(cx, &x[0], &x[1], &x[2])),
        Op::Cast(d) => Ok(vec![x[0].cast(*d)]),
        Op::Reduce { op, axes, keepdim } => one(reduce::reduce(cx, *op, axes, *keepdim, &x[0])),
        Op::ArgReduce { op, axis, keepdim } => one(reduce::arg_reduce(cx, *op, *axis, *keepdim, &x[0])),
        Op::Cumsum {
            axis,
            exclusive,
            reverse,
        } => one(reduce::cumsum(cx, *axis, *exclusive, *reverse, &x[0])),
        Op::TopK { k, axis, largest } => reduce::topk(cx, k, *axis, *largest, &x[0]),
        Op::Reshape(s) => one(movement::reshape(cx, s, &x[0])),
        Op::Permute(p) => one(movement::permute(cx, p, &x[0])),
        Op::Expand(s) => one(movement::expand(cx, s, &x[0])),
        Op::Slice { axis, start, end, step } => one(movement::slice(cx, *axis, start, end, *step, &x[0])),
        Op::Concat { axis } => one(movement::concat(cx, *axis, x)),
        Op::Pad {
            axis,
            before,
            after,
            value,
        } => one(movement::pad(cx, *axis, *before, *after, *value, &x[0])),
        Op::MatMul => one(matmul::matmul(cx, &x[0], &x[1])),
        Op::Gather { axis } => one(index::gather(cx, *axis, &x[0], &x[1])),
        Op::Take { axis } => one(index::take(cx, *axis, &x[0], &x[1])),
        Op::Scatter { axis } => one(index::scatter(cx, *axis, &x[0], &x[1], &x[2])),
        Op::DynamicSlice { axis, size } => one(index::dynamic_slice(cx, *axis, size, &x[0], &x[1])),
        Op::DynamicUpdateSlice { axis } => one(index::dynamic_update_slice(cx, *axis, &x[0], &x[1], &x[2])),
        Op::Input { .. } | Op::Param { .. } | Op::Loop(_) => Err(cx.err("not a plain op")),
    }
}
