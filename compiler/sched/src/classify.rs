//! What each node is to the scheduler, and which values need a buffer.

use std::collections::{HashMap, HashSet};

use mlc_ir::{BinaryOp, DType, Dim, Graph, NodeId, Op, UnaryOp, Value};

use crate::attention::AttnMatch;

/// How the scheduler treats a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Inputs, weights and non-scalar constants: buffers filled from outside.
    Leaf,
    /// Scalar constants, iota, dims used as values: computed inline wherever they are used.
    Free,
    /// Unary, binary, select, cast.
    Elementwise,
    /// Reshape, permute, expand, slice: index arithmetic only.
    Movement,
    /// A reduction with its own kernel.
    Reduce,
    /// A matrix product through the GEMM library.
    MatMul,
    /// A loop with a body plan.
    Loop,
    /// An op without generated code: run by the runtime's reference implementation.
    Opaque,
}

/// Dtypes the generated kernels compute in.
pub fn kernel_dtype(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I32 | DType::I64 | DType::Bool)
}

/// The class of a node.
pub fn classify(g: &Graph, n: NodeId) -> Class {
    let node = g.node(n);
    let supported = node.outputs.iter().all(|t| kernel_dtype(t.dtype))
        && g.operands(n).iter().all(|v| kernel_dtype(g.ty(*v).dtype));
    match &node.op {
        Op::Input { .. } | Op::Param { .. } => Class::Leaf,
        Op::Const(lit) => {
            if lit.shape.is_empty() && kernel_dtype(lit.dtype) {
                Class::Free
            } else {
                Class::Leaf
            }
        }
        Op::Loop(_) => Class::Loop,
        _ if !supported => Class::Opaque,
        Op::DimSize(_) | Op::Iota { .. } => Class::Free,
        // Integer division, remainder and power report errors (a zero divisor, a negative
        // exponent) that a kernel cannot: generated code only for a safe constant right side.
        Op::Binary(BinaryOp::Div | BinaryOp::Rem | BinaryOp::Pow) if node.outputs[0].dtype.is_int() => {
            let rhs = g.operands(n)[1];
            let safe = match &g.node(rhs.node).op {
                Op::Const(mlc_ir::Literal {
                    data: mlc_ir::LiteralData::Int(v),
                    ..
                }) => v.iter().all(|&c| {
                    if matches!(node.op, Op::Binary(BinaryOp::Pow)) {
                        c >= 0
                    } else {
                        c != 0
                    }
                }),
                _ => false,
            };
            if safe { Class::Elementwise } else { Class::Opaque }
        }
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast(_) => Class::Elementwise,
        Op::Reshape(_) | Op::Permute(_) | Op::Expand(_) | Op::Slice { .. } => Class::Movement,
        Op::Reduce { .. } | Op::ArgReduce { .. } => Class::Reduce,
        Op::MatMul if node.outputs[0].dtype == DType::F32 => Class::MatMul,
        _ => Class::Opaque,
    }
}

/// If `v` is `permute` swapping the last two axes, its operand.
pub fn transposed_source(g: &Graph, v: Value) -> Option<Value> {
    let node = g.node(v.node);
    let Op::Permute(perm) = &node.op else { return None };
    let r = perm.len();
    let swap = r >= 2 && perm[r - 2] == r - 1 && perm[r - 1] == r - 2 && (0..r - 2).all(|i| perm[i] == i);
    swap.then(|| g.operands(v.node)[0])
}

/// The largest expression (in ops per element) recomputed in each consumer rather than stored.
const MAX_RECOMPUTE: usize = 16;

/// The most full-size buffers an expression read by several consumers may load and still be
/// recomputed in each: beyond that, storing it once costs less memory traffic than every
/// consumer loading all of them. A residual stream `x + a1 + a2 + ...` read by each layer's
/// norm and by the next add would otherwise be summed again, over all earlier layers, in every
/// norm's kernel (until the op count exceeded [`MAX_RECOMPUTE`]).
const MAX_RECOMPUTE_STREAMS: usize = 2;

/// The same for a value that a consumer broadcasts (reads each element many times): a rotary
/// cos/sin table is computed once, not once per batch row and head.
const MAX_RECOMPUTE_BROADCAST: usize = 4;

/// What one element of `n` costs when inlined, in simple ops: a transcendental function is a
/// polynomial or a library call, worth several adds.
fn op_cost(op: &Op) -> usize {
    match op {
        Op::Unary(
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Erf | UnaryOp::Sin | UnaryOp::Cos,
        )
        | Op::Binary(BinaryOp::Pow) => 8,
        _ => 1,
    }
}

/// True when consumer `n` broadcasts its operand `v` over outer axes (an `expand`, or an
/// elementwise op whose result is larger than this operand, with the same innermost axis): each
/// element of `v` is then recomputed for every outer index. Broadcasts along the innermost axis
/// (a per-row statistic scaling its row) are left alone: the row's reduction is already computed
/// once per row inside the consumer's kernel.
fn broadcasts(g: &Graph, n: NodeId, class: Class, v: Value) -> bool {
    let (from, to) = (&g.ty(v).shape, &g.ty(Value::of(n)).shape);
    let outer_only = from != to && from.last().is_some() && from.last() == to.last();
    outer_only && (matches!(g.node(n).op, Op::Expand(_)) || class == Class::Elementwise)
}

/// True when consumer `n` reads its operand `v` once per row of its kernel rather than once per
/// element: `n`'s result has a last axis of 1 (a per-row value itself), or `n` broadcasts `v`
/// along the innermost axis only (a per-row statistic scaling its row). A reduction read that
/// way is computed once per row inside the consumer's kernel (kernel_gen memoises it at the
/// outermost loop level that fixes its index); read any other way, including by another
/// reduction, it is recomputed for every element that reads it.
fn reads_per_row(g: &Graph, n: NodeId, class: Class, v: Value) -> bool {
    if class == Class::Reduce {
        return false;
    }
    let (from, to) = (&g.ty(v).shape, &g.ty(Value::of(n)).shape);
    let one = Some(&Dim::c(1));
    let row_valued = to.last() == one;
    let row_broadcast = from.len() == to.len() && from.last() == one && to.last() != one;
    row_valued || (row_broadcast && (matches!(g.node(n).op, Op::Expand(_)) || class == Class::Elementwise))
}

/// The number of elements one result element of reduction `n` combines, a symbolic axis
/// counted as [`SYMBOLIC_AXIS_LEN`].
fn reduce_len(g: &Graph, n: NodeId) -> usize {
    let shape = &g.ty(g.operands(n)[0]).shape;
    let axes: Vec<usize> = match &g.node(n).op {
        Op::Reduce { axes, .. } => axes.clone(),
        Op::ArgReduce { axis, .. } => vec![*axis],
        _ => return 1,
    };
    axes.iter()
        .map(|&a| {
            shape
                .get(a)
                .and_then(Dim::as_const)
                .map_or(SYMBOLIC_AXIS_LEN, |d| d.max(1) as usize)
        })
        .fold(1usize, usize::saturating_mul)
}

/// The length assumed for a symbolic axis when weighing what a reduction costs.
const SYMBOLIC_AXIS_LEN: usize = 64;

/// True for a reduction (or arg-reduction) over the last axes of its input: its consumers in
/// the natural layout need it once per row.
fn reduces_trailing_axes(g: &Graph, n: NodeId) -> bool {
    let rank = g.ty(g.operands(n)[0]).rank();
    match &g.node(n).op {
        Op::Reduce { axes, .. } => {
            !axes.is_empty() && axes.iter().enumerate().all(|(i, &a)| a == rank - axes.len() + i)
        }
        Op::ArgReduce { axis, .. } => *axis + 1 == rank,
        _ => false,
    }
}

/// The values that get a buffer, decided in topological order.
///
/// The roots of recognised attentions (`attn`) read their step's operands (all buffered); the
/// nodes they replace get no buffer and count no uses.
pub fn buffered_values(
    g: &Graph,
    order: &[NodeId],
    class: &HashMap<NodeId, Class>,
    attn: &HashMap<NodeId, AttnMatch>,
) -> HashSet<Value> {
    let interior: HashSet<NodeId> = attn.values().flat_map(|a| a.interior.iter().copied()).collect();
    let mut uses: HashMap<Value, usize> = HashMap::new();
    // Operand slots of consumers that cannot take an inlined expression.
    let mut forced: HashSet<Value> = HashSet::new();
    // Values some consumer broadcasts.
    let mut broadcast: HashSet<Value> = HashSet::new();
    // Values some consumer reads once per element of its own (not hoisted per row).
    let mut per_element: HashSet<Value> = HashSet::new();
    for &n in order {
        if interior.contains(&n) {
            continue;
        }
        if let Some(a) = attn.get(&n) {
            for v in a.operands() {
                *uses.entry(v).or_default() += 1;
                forced.insert(v);
            }
            continue;
        }
        let ops = g.operands(n);
        for (slot, v) in ops.iter().enumerate() {
            *uses.entry(*v).or_default() += 1;
            if broadcasts(g, n, class[&n], *v) {
                broadcast.insert(*v);
            }
            if !reads_per_row(g, n, class[&n], *v) {
                per_element.insert(*v);
            }
            let fuses = match class[&n] {
                Class::Elementwise | Class::Movement | Class::Reduce => true,
                // `x @ transpose(w)` reads w in place when w has a buffer.
                Class::MatMul => slot == 1 && transposed_source(g, *v).is_some(),
                _ => false,
            };
            if !fuses {
                forced.insert(*v);
            }
        }
    }
    for (_, v) in &g.outputs {
        *uses.entry(*v).or_default() += 1;
        forced.insert(*v);
    }
    let mut buffered: HashSet<Value> = HashSet::new();
    // A movement op over a buffer (directly or through other such ops) is a free re-indexing.
    let mut remap_of_buffer: HashSet<NodeId> = HashSet::new();
    // Ops per element of each unbuffered value when inlined, to decide what to recompute.
    let mut cost: HashMap<NodeId, usize> = HashMap::new();
    // The full-size buffers (same shape as the node's result) that each unbuffered elementwise
    // or movement value loads when inlined (tracked up to one past the limit).
    let mut streams: HashMap<NodeId, HashSet<Value>> = HashMap::new();
    for &n in order {
        if interior.contains(&n) {
            continue;
        }
        let node = g.node(n);
        // A reduction read per row costs a load; read per element, its whole row's work.
        let inline_cost = op_cost(&node.op)
            + g.operands(n)
                .iter()
                .filter(|v| !buffered.contains(v))
                .map(|v| {
                    let per_row = class[&v.node] == Class::Reduce && reads_per_row(g, n, class[&n], *v);
                    if per_row {
                        1
                    } else {
                        cost.get(&v.node).copied().unwrap_or(0)
                    }
                })
                .sum::<usize>();
        let mut loads: HashSet<Value> = HashSet::new();
        if matches!(class[&n], Class::Elementwise | Class::Movement) {
            let shape = &g.ty(Value::of(n)).shape;
            for v in g.operands(n) {
                if buffered.contains(&v) {
                    if &g.ty(v).shape == shape {
                        loads.insert(v);
                    }
                } else if let Some(inner) = streams.get(&v.node) {
                    loads.extend(inner.iter().copied());
                }
                if loads.len() > MAX_RECOMPUTE_STREAMS {
                    break;
                }
            }
        }
        // What one element of `n` costs wherever it is read per element.
        let element_cost = if class[&n] == Class::Reduce {
            inline_cost.saturating_mul(reduce_len(g, n))
        } else {
            inline_cost
        };
        for i in 0..node.outputs.len() {
            let v = Value {
                node: n,
                index: i as u32,
            };
            let many = uses.get(&v).copied().unwrap_or(0) > 1;
            let forced_here = forced.contains(&v);
            // Recomputing a small expression in each consumer beats a round trip through
            // memory; not when a consumer would recompute it for every element it broadcasts to.
            let too_costly = (many && (element_cost > MAX_RECOMPUTE || loads.len() > MAX_RECOMPUTE_STREAMS))
                || (broadcast.contains(&v) && element_cost > MAX_RECOMPUTE_BROADCAST);
            let needs = match class[&n] {
                Class::Leaf | Class::MatMul | Class::Loop | Class::Opaque => true,
                Class::Free => forced_here,
                // A reduction over trailing axes is computed inside each consumer's kernel, once
                // per row (see kernel_gen); other reductions get a kernel and a buffer, and so
                // does one that several consumers would recompute per element (a score row
                // that a softmax reads in each of its passes).
                Class::Reduce => {
                    forced_here || !reduces_trailing_axes(g, n) || (per_element.contains(&v) && too_costly)
                }
                Class::Elementwise => forced_here || too_costly,
                Class::Movement => forced_here || (!remap_of_buffer.contains(&n) && too_costly),
            };
            if needs {
                buffered.insert(v);
            }
        }
        cost.insert(n, element_cost);
        streams.insert(n, loads);
        if class[&n] == Class::Movement {
            let src = g.operands(n)[0];
            if buffered.contains(&src) || remap_of_buffer.contains(&src.node) {
                remap_of_buffer.insert(n);
            }
        }
        // The source of a transposed matmul operand is read in place, so it needs a buffer.
        if class[&n] == Class::MatMul
            && !attn.contains_key(&n)
            && let Some(src) = transposed_source(g, g.operands(n)[1])
        {
            buffered.insert(src);
        }
    }
    buffered
}
