//! GEMM epilogues: a kernel that only finishes a matrix product becomes part of the product.
//!
//! A linear layer with an activation, `gelu(x @ w^T + b)`, plans as a product into a
//! temporary and a kernel that reads it back to add the bias and apply the activation: the
//! whole `[M, N]` result goes to memory and returns. [`fuse_epilogues`] finds such pairs in a
//! finished plan and gives the kernel's work to the product's [`MatMulEpilogue`]; the GEMM
//! applies it to each block of the output while the block is still in cache, and the kernel
//! and the temporary's traffic disappear.
//!
//! The kernel must be, element for element over the product's shape,
//! `activation(p + bias[j]) + residual` (each part optional, additions in either order), with
//! `p` the product, `bias` an `f32[N]` buffer, `residual` a buffer of the output's shape, and
//! the activation one of [`Activation`]'s, written as `std.math` writes it. The product must
//! have no other reader and not be an output. Anything else keeps its kernel.

use std::collections::HashMap;

use mlc_ir::plan::{Activation, BufId, BufKind, FunctionPlan, MatMulEpilogue, ModulePlan, Step};
use mlc_ir::{BinaryOp, DType, IExpr, KStmt, KernelFn, Scalar, UnaryOp, VExpr};

/// Moves every epilogue kernel of `plan` into its product, then drops the kernels no step runs
/// any more (renumbering the rest).
pub fn fuse_epilogues(plan: &mut ModulePlan) {
    for f in &mut plan.functions {
        fuse_in(&plan.kernels, f);
    }
    drop_unused_kernels(plan);
}

fn fuse_in(kernels: &[KernelFn], f: &mut FunctionPlan) {
    for step in &mut f.steps {
        if let Step::Loop { body, .. } = step {
            fuse_in(kernels, body);
        }
    }
    let mut s = 0;
    while s < f.steps.len() {
        let Some((reader, epilogue, out)) = candidate(kernels, f, s) else {
            s += 1;
            continue;
        };
        let Step::MatMul {
            a,
            b,
            b_transposed,
            origin,
            ..
        } = f.steps.remove(s)
        else {
            unreachable!("`candidate` accepts products only");
        };
        // The fused product runs where the kernel ran: its operands are ready there too
        // (every buffer of a plan is written by one step, before it is read).
        f.steps[reader - 1] = Step::MatMul {
            a,
            b,
            out,
            b_transposed,
            epilogue,
            origin,
        };
    }
    drop_unused_temps(f);
}

/// Removes the temporaries no step names any more (the products now fused) and renumbers.
fn drop_unused_temps(f: &mut FunctionPlan) {
    let mut named = vec![false; f.bufs.len()];
    for step in &mut f.steps {
        for b in step.buf_ids_mut() {
            named[*b as usize] = true;
        }
    }
    for (i, b) in f.bufs.iter().enumerate() {
        named[i] |= b.kind != BufKind::Temp;
    }
    for (_, b) in &f.outputs {
        named[*b as usize] = true;
    }
    if named.iter().all(|&n| n) {
        return;
    }
    let mut renumber = vec![0; f.bufs.len()];
    let mut kept = Vec::new();
    for (i, buf) in std::mem::take(&mut f.bufs).into_iter().enumerate() {
        if named[i] {
            renumber[i] = kept.len() as BufId;
            kept.push(buf);
        }
    }
    f.bufs = kept;
    for step in &mut f.steps {
        for b in step.buf_ids_mut() {
            *b = renumber[*b as usize];
        }
    }
    for b in f.inputs.iter_mut().chain(f.outputs.iter_mut().map(|(_, b)| b)) {
        *b = renumber[*b as usize];
    }
}

/// If step `s` is a product whose only reader is an epilogue kernel: that step's position, the
/// epilogue and the kernel's output buffer.
fn candidate(kernels: &[KernelFn], f: &FunctionPlan, s: usize) -> Option<(usize, MatMulEpilogue, BufId)> {
    let Step::MatMul { out: t, epilogue, .. } = &f.steps[s] else {
        return None;
    };
    let tb = &f.bufs[*t as usize];
    if !epilogue.is_identity()
        || tb.kind != BufKind::Temp
        || tb.ty.dtype != DType::F32
        || f.outputs.iter().any(|(_, b)| b == t)
    {
        return None;
    }
    let mut readers = f
        .steps
        .iter()
        .enumerate()
        .filter(|(_, st)| st.reads_writes(kernels).0.contains(t));
    let (reader, step) = readers.next()?;
    if readers.next().is_some() || reader < s {
        return None;
    }
    let Step::Kernel { kernel, bufs, .. } = step else {
        return None;
    };
    let (epilogue, out) = Matcher { f, bufs, product: *t }.kernel(kernels.get(*kernel as usize)?)?;
    Some((reader, epilogue, out))
}

struct Matcher<'a> {
    f: &'a FunctionPlan,
    /// The kernel step's buffers, in the kernel's order.
    bufs: &'a [BufId],
    product: BufId,
}

/// The parts of an epilogue found in an expression: kernel buffer indices.
#[derive(Default)]
struct Parts {
    bias: Option<u32>,
    residual: Option<u32>,
}

impl Matcher<'_> {
    /// The epilogue and output buffer of kernel `k`, if it is `for i0 { for j { out[i0*N + j] =
    /// epilogue(product[i0*N + j]) } }`.
    fn kernel(&self, k: &KernelFn) -> Option<(MatMulEpilogue, BufId)> {
        let [
            KStmt::Loop {
                var: j, extent, body, ..
            },
        ] = k.body.as_slice()
        else {
            return None;
        };
        let [KStmt::Store { buf, index, value }] = body.as_slice() else {
            return None;
        };
        let row = IExpr::Var(k.parallel.0) * extent.clone() + IExpr::Var(*j);
        let out = *self.bufs.get(*buf as usize)?;
        let (ot, pt) = (&self.f.bufs[out as usize].ty, &self.f.bufs[self.product as usize].ty);
        if *index != row || ot != pt {
            return None;
        }
        let m = Elems { at: &row, col: *j };
        let (activation, parts) = self.value(&m, value)?;
        let buf = |kb: u32| self.bufs[kb as usize];
        let epilogue = MatMulEpilogue {
            bias: parts.bias.map(buf),
            activation,
            residual: parts.residual.map(buf),
        };
        Some((epilogue, out))
    }

    /// `activation(p + bias) + residual`, or without an activation any sum of `p`, a bias and a
    /// residual.
    fn value(&self, m: &Elems, v: &VExpr) -> Option<(Activation, Parts)> {
        let mut parts = Parts::default();
        if self.sum_terms(m, v, &mut parts, &mut false) {
            return Some((Activation::None, parts));
        }
        let mut tries: Vec<(&VExpr, Option<u32>)> = vec![(v, None)];
        if let VExpr::Binary(BinaryOp::Add, x, y) = v {
            for (main, other) in [(x, y), (y, x)] {
                if let Some(r) = self.residual(m, other) {
                    tries.push((main, Some(r)));
                }
            }
        }
        for (main, residual) in tries {
            let Some((activation, inner)) = activation_of(main) else {
                continue;
            };
            let mut parts = Parts { bias: None, residual };
            let mut seen_product = false;
            if self.pre_activation(m, inner, &mut parts, &mut seen_product) && seen_product {
                return Some((activation, parts));
            }
        }
        None
    }

    /// Collects `v` as a sum of the product, at most one bias and at most one residual.
    fn sum_terms(&self, m: &Elems, v: &VExpr, parts: &mut Parts, seen_product: &mut bool) -> bool {
        if let VExpr::Binary(BinaryOp::Add, x, y) = v {
            return self.sum_terms(m, x, parts, seen_product) && self.sum_terms(m, y, parts, seen_product);
        }
        if self.is_product(m, v) && !*seen_product {
            *seen_product = true;
            return true;
        }
        if let Some(b) = self.bias(m, v)
            && parts.bias.is_none()
        {
            parts.bias = Some(b);
            return true;
        }
        if let Some(r) = self.residual(m, v)
            && parts.residual.is_none()
        {
            parts.residual = Some(r);
            return true;
        }
        false
    }

    /// The product, or the product plus a bias, in either order.
    fn pre_activation(&self, m: &Elems, v: &VExpr, parts: &mut Parts, seen_product: &mut bool) -> bool {
        if self.is_product(m, v) {
            *seen_product = true;
            return true;
        }
        let VExpr::Binary(BinaryOp::Add, x, y) = v else {
            return false;
        };
        for (p, b) in [(x, y), (y, x)] {
            if self.is_product(m, p)
                && let Some(kb) = self.bias(m, b)
            {
                *seen_product = true;
                parts.bias = Some(kb);
                return true;
            }
        }
        false
    }

    /// True when `v` loads the product at the element being written.
    fn is_product(&self, m: &Elems, v: &VExpr) -> bool {
        matches!(v, VExpr::Load { buf, index } if index == m.at && self.bufs.get(*buf as usize) == Some(&self.product))
    }

    /// The kernel buffer of `v` if it loads an `f32[N]` buffer at the column.
    fn bias(&self, m: &Elems, v: &VExpr) -> Option<u32> {
        let VExpr::Load { buf, index } = v else {
            return None;
        };
        let b = &self.f.bufs[*self.bufs.get(*buf as usize)? as usize].ty;
        let product = &self.f.bufs[self.product as usize].ty;
        let ok = *index == IExpr::Var(m.col)
            && b.dtype == DType::F32
            && b.shape.len() == 1
            && product.shape.last() == b.shape.first();
        ok.then_some(*buf)
    }

    /// The kernel buffer of `v` if it loads another buffer of the output's shape at the element.
    fn residual(&self, m: &Elems, v: &VExpr) -> Option<u32> {
        let VExpr::Load { buf, index } = v else {
            return None;
        };
        let b = *self.bufs.get(*buf as usize)?;
        let (bt, pt) = (&self.f.bufs[b as usize].ty, &self.f.bufs[self.product as usize].ty);
        (index == m.at && b != self.product && bt == pt).then_some(*buf)
    }
}

/// Where the kernel writes: the element index and the column variable.
struct Elems<'a> {
    at: &'a IExpr,
    col: u32,
}

/// The activation `v` applies and its argument, as `std.math` writes each one.
fn activation_of(v: &VExpr) -> Option<(Activation, &VExpr)> {
    let f32c = |e: &VExpr, c: f32| matches!(e, VExpr::Const(Scalar::F32(x)) if *x == c);
    match v {
        VExpr::Unary(UnaryOp::Tanh, x) => return Some((Activation::Tanh, x)),
        VExpr::Unary(UnaryOp::Sigmoid, x) => return Some((Activation::Sigmoid, x)),
        _ => {}
    }
    let VExpr::Binary(BinaryOp::Mul, p, q) = v else {
        return None;
    };
    for (l, r) in [(p, q), (q, p)] {
        // silu(x) = x * sigmoid(x)
        if let VExpr::Unary(UnaryOp::Sigmoid, y) = r.as_ref()
            && y == l
        {
            return Some((Activation::Silu, l));
        }
        // gelu(x) = x * 0.5 * (1.0 + erf(x * 0.7071067811865476))
        if let Some(x) = commuted(l, BinaryOp::Mul, |c| f32c(c, 0.5))
            && let Some(e) = commuted(r, BinaryOp::Add, |c| f32c(c, 1.0))
            && let VExpr::Unary(UnaryOp::Erf, s) = e
            && commuted(s, BinaryOp::Mul, |c| f32c(c, std::f32::consts::FRAC_1_SQRT_2)) == Some(x)
        {
            return Some((Activation::GeluErf, x));
        }
    }
    None
}

/// The other operand of `v = op(a, b)` where one operand satisfies `is_const`.
fn commuted(v: &VExpr, op: BinaryOp, is_const: impl Fn(&VExpr) -> bool) -> Option<&VExpr> {
    let VExpr::Binary(o, a, b) = v else {
        return None;
    };
    if *o != op {
        return None;
    }
    if is_const(b) {
        Some(a)
    } else if is_const(a) {
        Some(b)
    } else {
        None
    }
}

/// Removes the kernels no step runs and renumbers the steps' references.
fn drop_unused_kernels(plan: &mut ModulePlan) {
    fn visit(steps: &mut [Step], f: &mut impl FnMut(&mut u32)) {
        for s in steps {
            match s {
                Step::Kernel { kernel, .. } => f(kernel),
                Step::Loop { body, .. } => visit(&mut body.steps, f),
                _ => {}
            }
        }
    }
    let mut used = vec![false; plan.kernels.len()];
    for f in &mut plan.functions {
        visit(&mut f.steps, &mut |k| {
            if let Some(u) = used.get_mut(*k as usize) {
                *u = true;
            }
        });
    }
    let mut renumber = HashMap::new();
    let old = std::mem::take(&mut plan.kernels);
    for (i, k) in old.into_iter().enumerate() {
        if used[i] {
            renumber.insert(i as u32, plan.kernels.len() as u32);
            plan.kernels.push(k);
        }
    }
    for f in &mut plan.functions {
        visit(&mut f.steps, &mut |k| {
            if let Some(&n) = renumber.get(k) {
                *k = n;
            }
        });
    }
}
