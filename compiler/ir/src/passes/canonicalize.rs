//! `canonicalize`: removes identity ops, folds chains of reshapes and of permutes, and puts
//! constants on the right of commutative binary ops.

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use super::{Pass, const_of, remove_if_dead, replace_node, set_operand};
use crate::graph::{Graph, NodeId, Value};
use crate::op::{BinaryOp, LiteralData, Op};
use crate::shape::Dim;

/// Rewrites to a fixpoint:
/// - identities: `reshape`/`expand` to the operand's own shape, `permute` by the identity,
///   `cast` to the operand's dtype, `slice` of a whole axis with step 1, `pad` by nothing,
///   `concat` of one operand, `x + 0` and `x * 1` where the result has `x`'s type (so a
///   broadcasting constant is never dropped; `x + 0` ignores the sign of a zero `x`, as ML
///   compilers do);
/// - `reshape(reshape(x))` → `reshape(x)`, `permute(permute(x))` → one `permute`;
/// - `c + x` → `x + c` for a constant `c` and the commutative `add`, `mul`, `and`, `or`, `xor`,
///   `eq`, `ne` (`max`/`min` are left alone: their NaN rule is not symmetric everywhere).
pub struct Canonicalize;

/// Bound on rewrite sweeps (each sweep that changes something shrinks or reorders the graph).
const MAX_SWEEPS: usize = 100;

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn run(&self, g: &mut Graph) -> bool {
        let mut changed = false;
        for _ in 0..MAX_SWEEPS {
            let Ok(order) = g.topo_order() else { return changed };
            let mut any = false;
            for n in order {
                if g.dag.contains_node(n) {
                    any |= rewrite(g, n);
                }
            }
            if !any {
                break;
            }
            changed = true;
        }
        changed
    }
}

fn rewrite(g: &mut Graph, n: NodeId) -> bool {
    let ops = g.operands(n);
    if g.dag[n].outputs.len() != 1 {
        return false;
    }
    if let Some(src) = identity_source(g, n, &ops)
        && g.ty(src) == &g.dag[n].outputs[0]
    {
        replace_node(g, n, &[src]);
        for v in ops {
            remove_if_dead(g, v.node);
        }
        return true;
    }
    let producer = |i: usize| ops.get(i).filter(|v| v.index == 0).map(|v| (v.node, &g.dag[v.node].op));
    match (&g.dag[n].op, producer(0)) {
        (Op::Reshape(_), Some((inner, Op::Reshape(_)))) => {
            let Some(&src) = g.operands(inner).first() else {
                return false;
            };
            set_operand(g, n, 0, src);
            remove_if_dead(g, inner);
            true
        }
        (Op::Permute(outer), Some((inner, Op::Permute(first)))) => {
            if outer.len() != first.len() || outer.iter().any(|&a| a >= first.len()) {
                return false;
            }
            let composed: Vec<usize> = outer.iter().map(|&a| first[a]).collect();
            let Some(&src) = g.operands(inner).first() else {
                return false;
            };
            g.dag[n].op = Op::Permute(composed);
            set_operand(g, n, 0, src);
            remove_if_dead(g, inner);
            true
        }
        (Op::Binary(b), _) if is_commutative(*b) && ops.len() == 2 => {
            let (l, r) = (const_of(g, ops[0]).is_some(), const_of(g, ops[1]).is_some());
            if !l || r {
                return false;
            }
            let edges: Vec<_> = g.dag.edges_directed(n, Direction::Incoming).map(|e| e.id()).collect();
            for e in edges {
                let w = &mut g.dag[e];
                w.operand = 1 - w.operand;
            }
            true
        }
        _ => false,
    }
}

fn is_commutative(b: BinaryOp) -> bool {
    matches!(
        b,
        BinaryOp::Add | BinaryOp::Mul | BinaryOp::And | BinaryOp::Or | BinaryOp::Xor | BinaryOp::Eq | BinaryOp::Ne
    )
}

/// The operand that `n` merely passes through, if `n` is an identity.
fn identity_source(g: &Graph, n: NodeId, ops: &[Value]) -> Option<Value> {
    let x = *ops.first()?;
    let t = g.ty(x);
    let same = match &g.dag[n].op {
        Op::Reshape(s) | Op::Expand(s) => ops.len() == 1 && *s == t.shape,
        Op::Permute(p) => ops.len() == 1 && p.iter().enumerate().all(|(i, a)| i == *a),
        Op::Cast(d) => ops.len() == 1 && *d == t.dtype,
        Op::Slice { axis, start, end, step } => {
            ops.len() == 1 && *step == 1 && *start == Dim::c(0) && t.shape.get(*axis) == Some(end)
        }
        Op::Pad { before, after, .. } => ops.len() == 1 && *before == 0 && *after == 0,
        Op::Concat { .. } => ops.len() == 1,
        Op::Binary(b @ (BinaryOp::Add | BinaryOp::Mul)) if ops.len() == 2 => {
            let neutral = if *b == BinaryOp::Add { 0.0 } else { 1.0 };
            let other = |i: usize| {
                const_of(g, ops[1 - i]).is_some_and(|lit| match &lit.data {
                    LiteralData::Float(v) => v.iter().all(|x| *x == neutral),
                    LiteralData::Int(v) => v.iter().all(|x| *x as f64 == neutral),
                    LiteralData::Bool(_) => false,
                })
            };
            // The caller checks that the result type equals the kept operand's type.
            return [0, 1]
                .into_iter()
                .find(|&i| other(i) && g.ty(ops[i]) == &g.dag[n].outputs[0])
                .map(|i| ops[i]);
        }
        _ => false,
    };
    same.then_some(x)
}
