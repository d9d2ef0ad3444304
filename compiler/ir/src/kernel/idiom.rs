//! Whole-kernel idioms: kernels that compute something a backend may have a hand-written
//! routine for (the CPU backend runs `mlc_kernels::softmax` for a [`RowSoftmax`]). Recognition
//! is exact: the kernel must be, statement for statement, the form the scheduler generates for
//! the idiom (after the Kernel IR rewrites), up to variable numbering, the order of independent
//! definitions and of commutative operands. Anything else keeps its generated code, so a
//! backend without the routine loses nothing.

use std::collections::HashMap;
use std::ops::Range;

use super::{Access, IExpr, KStmt, KernelFn, Scalar, VExpr};
use crate::dtype::DType;
use crate::op::{BinaryOp, UnaryOp};

/// A kernel that computes `out[r, :] = softmax(x[r, :])` over rows of `row_len` consecutive
/// elements, row `r` being the parallel index, with `std.math.softmax`'s semantics (the row
/// maximum ignores NaN; a row of `-inf` gives zeros; a sum that is not positive divides by 1).
#[derive(Clone, Debug, PartialEq)]
pub struct RowSoftmax {
    /// The kernel buffer read (an index into [`KernelFn::bufs`]).
    pub input: u32,
    /// The kernel buffer written.
    pub output: u32,
    /// Elements per row, in terms of the kernel's dims.
    pub row_len: IExpr,
}

/// The softmax `k` computes, if it is exactly the scheduler's row softmax:
///
/// ```text
/// acc m = -inf;  for i in 0..n { m = max(m, x[p*n + i]) }
/// let m' = select(m > -inf, m, 0);  acc s = 0
/// for i in 0..n { let e = exp(x[p*n + i] - m'); out[p*n + i] = e; s = s + e }
/// let r = recip(select(s > 0, s, 1))
/// for i in 0..n { out[p*n + i] = out[p*n + i] * r }
/// ```
pub fn row_softmax(k: &KernelFn) -> Option<RowSoftmax> {
    let [xb, ob] = k.bufs.as_slice() else {
        return None;
    };
    let (input, output) = match (xb.access, ob.access) {
        (Access::Read, Access::Write) => (0, 1),
        (Access::Write, Access::Read) => (1, 0),
        _ => return None,
    };
    if xb.dtype != DType::F32 || ob.dtype != DType::F32 {
        return None;
    }
    let p = k.parallel.0;
    let mut defs: HashMap<u32, (usize, &VExpr)> = HashMap::new();
    let mut loops = Vec::new();
    for (at, s) in k.body.iter().enumerate() {
        match s {
            KStmt::Let { var, dtype, value }
            | KStmt::Acc {
                var,
                dtype,
                init: value,
            } if *dtype == DType::F32 => {
                defs.insert(*var, (at, value));
            }
            KStmt::Loop { var, extent, body, .. } => loops.push((at, *var, extent, body.as_slice())),
            _ => return None,
        }
    }
    let [
        (at1, i1, n, max_body),
        (at2, i2, n2, exp_body),
        (at3, i3, n3, scale_body),
    ] = loops.as_slice()
    else {
        return None;
    };
    if n2 != n || n3 != n || k.body.len() != 7 {
        return None;
    }
    let row = |i: u32| IExpr::Var(p) * (*n).clone() + IExpr::Var(i);
    let load = |buf: u32, i: u32| VExpr::Load { buf, index: row(i) };
    let is_f32 = |e: &VExpr, c: f32| matches!(e, VExpr::Const(Scalar::F32(x)) if *x == c);
    // A variable defined by a statement in `within`, as `want` says.
    let def = |v: &VExpr, within: Range<usize>, want: &dyn Fn(&VExpr) -> bool| -> Option<u32> {
        let VExpr::Var(v) = v else { return None };
        let (at, e) = defs.get(v)?;
        (within.contains(at) && want(e)).then_some(*v)
    };

    // Pass 1: the maximum.
    let [KStmt::Assign { var: m, value }] = max_body else {
        return None;
    };
    let (acc, x) = commuted(value, BinaryOp::Max)?;
    def(acc, 0..*at1, &|e| is_f32(e, f32::NEG_INFINITY)).filter(|v| v == m)?;
    if *x != load(input as u32, *i1) {
        return None;
    }
    // Pass 2: the exponentials, stored and summed.
    let [
        KStmt::Let { var: e, value: ev, .. },
        KStmt::Store { buf, index, value: sv },
        KStmt::Assign { var: s, value: av },
    ] = exp_body
    else {
        return None;
    };
    let VExpr::Unary(UnaryOp::Exp, diff) = ev else {
        return None;
    };
    let VExpr::Binary(BinaryOp::Sub, xv, shift) = diff.as_ref() else {
        return None;
    };
    let safe_max = |e: &VExpr| {
        matches!(e, VExpr::Select(c, a, b)
            if **a == VExpr::Var(*m) && is_f32(b, 0.0)
            && matches!(c.as_ref(), VExpr::Binary(BinaryOp::Gt, l, r) if **l == VExpr::Var(*m) && is_f32(r, f32::NEG_INFINITY)))
    };
    def(shift, *at1..*at2, &safe_max)?;
    let (acc, term) = commuted(av, BinaryOp::Add)?;
    def(acc, 0..*at2, &|e| is_f32(e, 0.0)).filter(|v| v == s)?;
    if **xv != load(input as u32, *i2) || *buf != output as u32 || *index != row(*i2) {
        return None;
    }
    if *sv != VExpr::Var(*e) || *term != VExpr::Var(*e) {
        return None;
    }
    // Pass 3: times the reciprocal of the sum.
    let [KStmt::Store { buf, index, value }] = scale_body else {
        return None;
    };
    let (stored, factor) = commuted_where(value, BinaryOp::Mul, |a| *a == load(output as u32, *i3))?;
    let recip_sum = |e: &VExpr| {
        matches!(e, VExpr::Unary(UnaryOp::Recip, d) if matches!(d.as_ref(), VExpr::Select(c, a, b)
            if **a == VExpr::Var(*s) && is_f32(b, 1.0)
            && matches!(c.as_ref(), VExpr::Binary(BinaryOp::Gt, l, r) if **l == VExpr::Var(*s) && is_f32(r, 0.0))))
    };
    def(factor, *at2..*at3, &recip_sum)?;
    if *buf != output as u32 || *index != row(*i3) || *stored != load(output as u32, *i3) {
        return None;
    }
    Some(RowSoftmax {
        input: input as u32,
        output: output as u32,
        row_len: (*n).clone(),
    })
}

/// The operands of `v = op(a, b)` as (a variable, the other), trying both orders.
fn commuted(v: &VExpr, op: BinaryOp) -> Option<(&VExpr, &VExpr)> {
    commuted_where(v, op, |a| matches!(a, VExpr::Var(_)))
}

/// The operands of `v = op(a, b)` as (the one satisfying `first`, the other).
fn commuted_where(v: &VExpr, op: BinaryOp, first: impl Fn(&VExpr) -> bool) -> Option<(&VExpr, &VExpr)> {
    let VExpr::Binary(o, a, b) = v else {
        return None;
    };
    if *o != op {
        None
    } else if first(a) {
        Some((a, b))
    } else if first(b) {
        Some((b, a))
    } else {
        None
    }
}
