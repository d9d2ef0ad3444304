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
    let rk = RowKernel::of(k)?;
    let (input, output) = match k.bufs.as_slice() {
        [x, o] if x.access == Access::Read && o.access == Access::Write => (0u32, 1u32),
        [o, x] if x.access == Access::Read && o.access == Access::Write => (1, 0),
        _ => return None,
    };
    let [(at1, i1, max_body), (at2, i2, exp_body), (at3, i3, scale_body)] = rk.loops.as_slice() else {
        return None;
    };
    if k.body.len() != 7 {
        return None;
    }
    let (row, load) = (|i| rk.row(i), |b, i| rk.load(b, i));
    let def = |v: &VExpr, within: Range<usize>, want: &dyn Fn(&VExpr) -> bool| rk.def(v, within, want);
    // Pass 1: the maximum.
    let [KStmt::Assign { var: m, value }] = max_body else {
        return None;
    };
    let (acc, x) = commuted(value, BinaryOp::Max)?;
    def(acc, 0..*at1, &|e| is_f32c(e, f32::NEG_INFINITY)).filter(|v| v == m)?;
    if *x != load(input, *i1) {
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
            if **a == VExpr::Var(*m) && is_f32c(b, 0.0)
            && matches!(c.as_ref(), VExpr::Binary(BinaryOp::Gt, l, r) if **l == VExpr::Var(*m) && is_f32c(r, f32::NEG_INFINITY)))
    };
    def(shift, *at1..*at2, &safe_max)?;
    let (acc, term) = commuted(av, BinaryOp::Add)?;
    def(acc, 0..*at2, &|e| is_f32c(e, 0.0)).filter(|v| v == s)?;
    if **xv != load(input, *i2) || *buf != output || *index != row(*i2) {
        return None;
    }
    if *sv != VExpr::Var(*e) || *term != VExpr::Var(*e) {
        return None;
    }
    // Pass 3: times the reciprocal of the sum.
    let [KStmt::Store { buf, index, value }] = scale_body else {
        return None;
    };
    let (stored, factor) = value.operand_where(BinaryOp::Mul, |a| (*a == load(output, *i3)).then_some(a))?;
    let recip_sum = |e: &VExpr| {
        matches!(e, VExpr::Unary(UnaryOp::Recip, d) if matches!(d.as_ref(), VExpr::Select(c, a, b)
            if **a == VExpr::Var(*s) && is_f32c(b, 1.0)
            && matches!(c.as_ref(), VExpr::Binary(BinaryOp::Gt, l, r) if **l == VExpr::Var(*s) && is_f32c(r, 0.0))))
    };
    def(factor, *at2..*at3, &recip_sum)?;
    if *buf != output || *index != row(*i3) || *stored != load(output, *i3) {
        return None;
    }
    Some(RowSoftmax {
        input,
        output,
        row_len: rk.n.clone(),
    })
}

/// A kernel that computes `out[r, :] = layer_norm(x[r, :]) * weight + bias` over rows of
/// `row_len` consecutive elements (a constant), row `r` being the parallel index, with
/// `std.nn.layer_norm`'s semantics: `mean = sum(x) / n`, `var = sum((x - mean)^2) / n`,
/// `out = (x - mean) * rsqrt(var + eps) * weight + bias`.
#[derive(Clone, Debug, PartialEq)]
pub struct RowLayerNorm {
    /// The kernel buffers (indices into [`KernelFn::bufs`]): the rows read, the `[row_len]`
    /// weight and bias, the rows written.
    pub input: u32,
    pub weight: u32,
    pub bias: u32,
    pub output: u32,
    pub row_len: i64,
    pub eps: f32,
}

/// The layer norm `k` computes, if it is exactly the scheduler's row layer norm with a weight
/// and a bias:
///
/// ```text
/// acc s = 0;  for i in 0..n { s = s + x[p*n + i] }
/// let mean = s / n;  acc q = 0
/// for i in 0..n { q = q + (x[p*n + i] - mean) * (x[p*n + i] - mean) }
/// let r = rsqrt(q / n + eps)
/// for i in 0..n { out[p*n + i] = (x[p*n + i] - mean) * r * weight[i] + bias[i] }
/// ```
pub fn row_layer_norm(k: &KernelFn) -> Option<RowLayerNorm> {
    let rk = RowKernel::of(k)?;
    let [(at1, i1, sum_body), (at2, i2, var_body), (at3, i3, out_body)] = rk.loops.as_slice() else {
        return None;
    };
    let IExpr::Const(n) = *rk.n else { return None };
    if k.body.len() != 7 || k.bufs.len() != 4 || n <= 0 {
        return None;
    }
    let nf = n as f32;
    let read = |b: u32| k.bufs.get(b as usize).is_some_and(|b| b.access == Access::Read);
    // Pass 1: the sum of the row of `x`.
    let [KStmt::Assign { var: s, value }] = sum_body else {
        return None;
    };
    let (acc, xl) = commuted(value, BinaryOp::Add)?;
    rk.def(acc, 0..*at1, &|e| is_f32c(e, 0.0)).filter(|v| v == s)?;
    let VExpr::Load { buf: input, .. } = xl else {
        return None;
    };
    if *xl != rk.load(*input, *i1) || !read(*input) {
        return None;
    }
    let mean_of =
        |e: &VExpr| matches!(e, VExpr::Binary(BinaryOp::Div, a, d) if **a == VExpr::Var(*s) && is_f32c(d, nf));
    // Pass 2: the sum of squared deviations.
    let [KStmt::Assign { var: q, value }] = var_body else {
        return None;
    };
    let (acc, sq) = commuted(value, BinaryOp::Add)?;
    rk.def(acc, 0..*at2, &|e| is_f32c(e, 0.0)).filter(|v| v == q)?;
    let VExpr::Binary(BinaryOp::Mul, d1, d2) = sq else {
        return None;
    };
    let centred = |e: &VExpr, i: u32| -> Option<u32> {
        let VExpr::Binary(BinaryOp::Sub, x, m) = e else {
            return None;
        };
        (**x == rk.load(*input, i)).then_some(())?;
        rk.def(m, *at1..*at2, &mean_of)
    };
    let mean = centred(d1, *i2)?;
    if d1 != d2 {
        return None;
    }
    // `rsqrt(q / n + eps)`: the epsilon.
    let rstd_eps = |e: &VExpr| {
        let VExpr::Unary(UnaryOp::Rsqrt, a) = e else {
            return None;
        };
        let VExpr::Binary(BinaryOp::Add, v, c) = a.as_ref() else {
            return None;
        };
        let VExpr::Const(Scalar::F32(eps)) = c.as_ref() else {
            return None;
        };
        let var = matches!(v.as_ref(), VExpr::Binary(BinaryOp::Div, a, d) if **a == VExpr::Var(*q) && is_f32c(d, nf));
        var.then_some(*eps)
    };
    // Pass 3: ((x - mean) * r) * weight[i] + bias[i], products and sums in either order.
    let [
        KStmt::Store {
            buf: output,
            index,
            value,
        },
    ] = out_body
    else {
        return None;
    };
    if *index != rk.row(*i3) || read(*output) {
        return None;
    }
    let column = |e: &VExpr| match e {
        VExpr::Load { buf, index } if *index == IExpr::Var(*i3) && read(*buf) && buf != input => Some(*buf),
        _ => None,
    };
    let (bias, scaled) = value.operand_where(BinaryOp::Add, column)?;
    let (weight, normed) = scaled.operand_where(BinaryOp::Mul, column)?;
    let (_, r) = normed.operand_where(BinaryOp::Mul, |e| centred(e, *i3).filter(|m| *m == mean))?;
    let VExpr::Var(r) = r else { return None };
    let (at, rstd) = rk.defs.get(r)?;
    if !(at2 < at && at < at3) {
        return None;
    }
    let eps = rstd_eps(rstd)?;
    if weight == bias {
        return None;
    }
    Some(RowLayerNorm {
        input: *input,
        weight,
        bias,
        output: *output,
        row_len: n,
        eps,
    })
}

/// The operands of `v = op(a, b)` as (a variable, the other), `a` tried first.
fn commuted(v: &VExpr, op: BinaryOp) -> Option<(&VExpr, &VExpr)> {
    v.operand_where(op, |a| matches!(a, VExpr::Var(_)).then_some(a))
}

/// A kernel whose body is `let`/`acc` definitions of `f32` scalars and loops that all run over
/// the same row extent `n` (each row `p*n .. (p+1)*n`, `p` the parallel index), and nothing
/// else: the shape of every row idiom.
struct RowKernel<'k> {
    p: u32,
    n: &'k IExpr,
    /// Each definition's statement position and value.
    defs: HashMap<u32, (usize, &'k VExpr)>,
    /// Each loop's statement position, variable and body, in order.
    loops: Vec<(usize, u32, &'k [KStmt])>,
}

impl<'k> RowKernel<'k> {
    fn of(k: &'k KernelFn) -> Option<RowKernel<'k>> {
        if k.bufs.iter().any(|b| b.dtype != DType::F32) {
            return None;
        }
        let mut defs = HashMap::new();
        let mut loops = Vec::new();
        let mut n = None;
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
                KStmt::Loop { var, extent, body, .. } if n.is_none_or(|n| n == extent) => {
                    n = Some(extent);
                    loops.push((at, *var, body.as_slice()));
                }
                _ => return None,
            }
        }
        Some(RowKernel {
            p: k.parallel.0,
            n: n?,
            defs,
            loops,
        })
    }

    /// Element `i` of the row: `p*n + i`.
    fn row(&self, i: u32) -> IExpr {
        IExpr::Var(self.p) * self.n.clone() + IExpr::Var(i)
    }

    /// A load of buffer `buf` at element `i` of the row.
    fn load(&self, buf: u32, i: u32) -> VExpr {
        VExpr::Load {
            buf,
            index: self.row(i),
        }
    }

    /// The variable `v` names, if a statement in `within` defines it as `want` says.
    fn def(&self, v: &VExpr, within: Range<usize>, want: &dyn Fn(&VExpr) -> bool) -> Option<u32> {
        let VExpr::Var(v) = v else { return None };
        let (at, e) = self.defs.get(v)?;
        (within.contains(at) && want(e)).then_some(*v)
    }
}

/// True if `e` is the `f32` constant `c`.
fn is_f32c(e: &VExpr, c: f32) -> bool {
    matches!(e, VExpr::Const(Scalar::F32(x)) if *x == c)
}
