//! `matvec`: a product with a single column, `A [..., M, K] @ b [K, 1]`, becomes the weighted
//! row sum `reduce_sum(A * b[:, 0], axis = -1, keepdim)`.
//!
//! Why: a GEMM call with N = 1 needs `A` in memory and packs it, while a row reduction fuses with
//! whatever computes `A`. Additive attention's `tanh(W1 e + W2 d) @ v` (Pointer Networks,
//! Bahdanau attention) and scalar heads (`h @ w_out` with one output) then run as one kernel that
//! never stores the `[..., M, K]` intermediate. The sum's order differs from the GEMM's, which
//! changes float results by rounding only.

use super::{Pass, replace_node};
use crate::dtype::DType;
use crate::graph::{Graph, NodeId, Value};
use crate::op::{BinaryOp, Op, ReduceOp};
use crate::shape::Dim;

/// Rewrites every `matmul` whose right operand is a rank-2 `[K, 1]` f32 matrix and whose left
/// operand has rank 2 or more.
pub struct MatVec;

impl Pass for MatVec {
    fn name(&self) -> &'static str {
        "matvec"
    }

    fn run(&self, g: &mut Graph) -> bool {
        let candidates: Vec<NodeId> = g
            .dag
            .node_indices()
            .filter(|&n| matches!(g.dag[n].op, Op::MatMul) && is_matvec(g, n))
            .collect();
        for &n in &candidates {
            rewrite(g, n);
        }
        !candidates.is_empty()
    }
}

fn is_matvec(g: &Graph, n: NodeId) -> bool {
    let ops = g.operands(n);
    let [a, b] = ops[..] else { return false };
    let (ta, tb) = (g.ty(a), g.ty(b));
    let out = &g.dag[n].outputs;
    out.len() == 1
        && out[0].dtype == DType::F32
        && ta.dtype == DType::F32
        && tb.dtype == DType::F32
        && ta.rank() >= 2
        && tb.rank() == 2
        && tb.shape[1] == Dim::c(1)
        && ta.shape.last() == tb.shape.first()
}

fn rewrite(g: &mut Graph, n: NodeId) {
    let ops = g.operands(n);
    let (a, b) = (ops[0], ops[1]);
    let origin = g.dag[n].origin.clone();
    let out = g.dag[n].outputs.clone();
    let rank = g.ty(a).rank();
    let column = g.ty(b).shape[..1].to_vec();
    let mut column_ty = g.ty(b).clone();
    column_ty.shape = column.clone();
    let v = g.add_typed(Op::Reshape(column), &[b], vec![column_ty], origin.clone());
    let product_ty = g.ty(a).clone();
    let p = g.add_typed(
        Op::Binary(BinaryOp::Mul),
        &[a, Value::of(v)],
        vec![product_ty],
        origin.clone(),
    );
    let sum = g.add_typed(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![rank - 1],
            keepdim: true,
        },
        &[Value::of(p)],
        out,
        origin,
    );
    replace_node(g, n, &[Value::of(sum)]);
}
