//! Division by a loop invariant becomes multiplication by its reciprocal.
//!
//! Softmax divides every element of a row by the row's sum, attention scales scores by
//! `1 / sqrt(d)` written as a division, GELU divides by `sqrt(2)`. A vector division costs
//! several times a multiplication (and runs on one port where multiplications run on two), so
//! [`reciprocal_of_invariant_divisors`] rewrites `a / b`, with `b` an `f32` invariant in the
//! innermost loop around it and `a` varying (a wholly invariant quotient is hoisted as it is), as
//! `a * recip(b)`; [`super::hoist_invariants`], run afterwards,
//! then computes `recip(b)` once before the loop.
//!
//! This changes the result by at most an ulp or so (`1/b` is rounded, then the product), well
//! within the backends' 1e-5 agreement with the interpreter. For a divisor so small that its
//! reciprocal overflows (below 2^-126, a subnormal) the product is infinite where the quotient
//! might be finite; such divisors do not occur in the sums and scales this is for.

use std::collections::{HashMap, HashSet};

use super::hoist::{defined_or_assigned, invariant, var_table};
use super::{KStmt, KernelFn, Scalar, VExpr};
use crate::dtype::DType;
use crate::op::{BinaryOp, UnaryOp};

/// Rewrites every `f32` division by an invariant of its innermost loop in `k` (see the module
/// docs). Divisions outside any loop (once per parallel index) stay as they are.
pub fn reciprocal_of_invariant_divisors(k: &mut KernelFn) {
    let (dtypes, _) = var_table(k);
    let mut body = std::mem::take(&mut k.body);
    block(k, &dtypes, &mut body);
    k.body = body;
}

/// Rewrites the bodies of the loops in `stmts`, innermost first.
fn block(k: &KernelFn, dtypes: &HashMap<u32, DType>, stmts: &mut [KStmt]) {
    for s in stmts {
        let KStmt::Loop { var, body, .. } = s else {
            continue;
        };
        block(k, dtypes, body);
        let mut inside = HashSet::from([*var]);
        defined_or_assigned(body, &mut inside);
        for e in body.iter_mut().filter_map(KStmt::expr_mut) {
            rewrite(k, dtypes, &inside, e);
        }
    }
}

fn rewrite(k: &KernelFn, dtypes: &HashMap<u32, DType>, inside: &HashSet<u32>, e: &mut VExpr) {
    for x in e.operands_mut() {
        rewrite(k, dtypes, inside, x);
    }
    // A wholly invariant quotient is hoisted as it is: once per row, exact.
    let invariant_f32_divisor = matches!(e, VExpr::Binary(BinaryOp::Div, a, b)
        if !invariant(a, inside) && invariant(b, inside)
            && k.dtype_of(b, &|v| dtypes.get(&v).copied().unwrap_or(DType::I64)) == DType::F32);
    if invariant_f32_divisor && let VExpr::Binary(_, a, b) = std::mem::replace(e, VExpr::Const(Scalar::F32(0.0))) {
        *e = VExpr::Binary(BinaryOp::Mul, a, Box::new(VExpr::Unary(UnaryOp::Recip, b)));
    }
}
