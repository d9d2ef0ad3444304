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
//!
//! A kernel that does more, but reads the product only as `p + bias[j] + residual` (a layer
//! norm after a linear layer and a residual add reads that sum in each of its three passes;
//! `relu(p + b)`, whose NaN semantics keep it a kernel, reads it once) gets only that part moved:
//! bias and residual go into the product's epilogue and every such sum in the kernel becomes a
//! load of the product ([`move_prologue`]).

use std::collections::HashMap;

use mlc_ir::plan::{Activation, BufId, BufKind, FunctionPlan, MatMulEpilogue, ModulePlan, Step};
use mlc_ir::{BinaryOp, DType, Dim, IExpr, KStmt, KernelFn, Scalar, UnaryOp, VExpr};

/// Moves every epilogue kernel of `plan` into its product, then drops the kernels no step runs
/// any more (renumbering the rest).
pub fn fuse_epilogues(plan: &mut ModulePlan) {
    for f in &mut plan.functions {
        fuse_in(&mut plan.kernels, f);
    }
    drop_unused_kernels(plan);
}

fn fuse_in(kernels: &mut [KernelFn], f: &mut FunctionPlan) {
    for step in &mut f.steps {
        if let Step::Loop { body, .. } = step {
            fuse_in(kernels, body);
        }
    }
    let mut s = 0;
    while s < f.steps.len() {
        let Some((reader, epilogue, out)) = candidate(kernels, f, s) else {
            if !move_prologue(kernels, f, s) {
                s += 1;
            }
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

/// If step `s` is a product whose only reader is a kernel that reads it only as
/// `p + bias[j] + residual` (any order, each part optional but not both absent), wherever it
/// reads it: moves bias and residual into the product's epilogue, replaces each such sum in the
/// kernel by a load of the product, and moves the product right before the kernel (where the
/// bias and residual are ready). Layer norms after a linear layer with a residual read
/// `x @ wᵀ + b + h` in each of their three passes; afterwards they read one buffer. Returns
/// whether it moved anything (the steps at `s` changed).
fn move_prologue(kernels: &mut [KernelFn], f: &mut FunctionPlan, s: usize) -> bool {
    let Some((reader, product)) = sole_kernel_reader(kernels, f, s) else {
        return false;
    };
    let Step::Kernel { kernel, bufs, .. } = &f.steps[reader] else {
        return false;
    };
    let k = &kernels[*kernel as usize];
    let m = Matcher { f, bufs, product };
    let Some(pk) = bufs.iter().position(|&b| b == product) else {
        return false;
    };
    let Some(n) = f.bufs[product as usize].ty.shape.last().cloned() else {
        return false;
    };
    let mut rewritten = k.clone();
    let mut found: Option<Parts> = None;
    let ok = rewrite_sums(&m, k, &n, pk as u32, &mut rewritten.body, &mut found);
    let Some(parts) = found.filter(|p| ok && (p.bias.is_some() || p.residual.is_some())) else {
        return false;
    };
    let epilogue = MatMulEpilogue {
        bias: parts.bias.map(|kb| bufs[kb as usize]),
        activation: Activation::None,
        residual: parts.residual.map(|kb| bufs[kb as usize]),
    };
    let mut step_bufs = bufs.clone();
    drop_unused_kernel_bufs(&mut rewritten, &mut step_bufs);
    // The planner gives every kernel step a kernel of its own: it can be rewritten in place.
    kernels[*kernel as usize] = rewritten;
    if let Step::Kernel { bufs, .. } = &mut f.steps[reader] {
        *bufs = step_bufs;
    }
    let Step::MatMul {
        a,
        b,
        out,
        b_transposed,
        origin,
        ..
    } = f.steps.remove(s)
    else {
        unreachable!("`sole_kernel_reader` accepts products only");
    };
    // The kernel is now at `reader - 1`; the product goes right before it.
    f.steps.insert(
        reader - 1,
        Step::MatMul {
            a,
            b,
            out,
            b_transposed,
            epilogue,
            origin,
        },
    );
    true
}

/// Removes the buffers kernel `k` no longer loads or stores from its parameters and from the
/// step's list `bufs` (in the kernel's order), renumbering the rest.
fn drop_unused_kernel_bufs(k: &mut KernelFn, bufs: &mut Vec<BufId>) {
    /// Calls `f` on every buffer index a statement of `body` stores to or loads from.
    fn walk(body: &mut [KStmt], f: &mut impl FnMut(&mut u32)) {
        for st in body {
            match st {
                KStmt::Loop { body, .. } => walk(body, f),
                KStmt::Store { buf, .. } => f(buf),
                _ => {}
            }
            if let Some(e) = st.expr_mut() {
                e.visit_mut(&mut |e| {
                    if let VExpr::Load { buf, .. } = e {
                        f(buf)
                    }
                });
            }
        }
    }
    let mut used = vec![false; k.bufs.len()];
    walk(&mut k.body, &mut |b| used[*b as usize] = true);
    let renumber: Vec<u32> = used
        .iter()
        .scan(0, |kept, &u| {
            let at = *kept;
            *kept += u32::from(u);
            Some(at)
        })
        .collect();
    walk(&mut k.body, &mut |b| *b = renumber[*b as usize]);
    let mut keep = used.iter();
    k.bufs.retain(|_| *keep.next().unwrap_or(&false));
    let mut keep = used.iter();
    bufs.retain(|_| *keep.next().unwrap_or(&false));
}

/// If step `s` is an `f32` product into a temporary with no epilogue yet, read by exactly one
/// later step, a kernel: that step's position and the product's buffer.
fn sole_kernel_reader(kernels: &[KernelFn], f: &FunctionPlan, s: usize) -> Option<(usize, BufId)> {
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
    if readers.next().is_some() || reader < s || !matches!(step, Step::Kernel { .. }) {
        return None;
    }
    Some((reader, *t))
}

/// Replaces, in `body` (statements of kernel `k`), every largest sum that contains a load of
/// the product (kernel buffer `pk`) by that load, collecting the bias and residual it added.
/// False when the product is read any other way, or two sums add different parts.
fn rewrite_sums(m: &Matcher, k: &KernelFn, n: &Dim, pk: u32, body: &mut [KStmt], found: &mut Option<Parts>) -> bool {
    for st in body {
        if let KStmt::Loop { body, .. } = st {
            if !rewrite_sums(m, k, n, pk, body, found) {
                return false;
            }
            continue;
        }
        let Some(e) = st.expr_mut() else { continue };
        let mut ok = true;
        e.visit_mut(&mut |e| {
            if !ok {
                return;
            }
            let is_sum = matches!(e, VExpr::Binary(BinaryOp::Add, ..));
            let Some((index, Some(col))) = product_load(e, pk) else {
                // No product at a column here: the search goes on inside, but a load of the
                // product met on its own (outside any sum) is read another way.
                ok &= !matches!(e, VExpr::Load { buf, .. } if *buf == pk);
                return;
            };
            let at = Elems { at: &index, col };
            let mut parts = Parts::default();
            if !row_major(k, &index, col, n) || !m.sum_terms(&at, e, &mut parts, &mut false) {
                ok &= is_sum;
                return;
            }
            match found {
                Some(p) if p.bias != parts.bias || p.residual != parts.residual => ok = false,
                _ => *found = Some(parts),
            }
            *e = VExpr::Load { buf: pk, index };
        });
        if !ok {
            return false;
        }
    }
    true
}

/// The index of the product's load in the sum `e` (its operands joined by `Add`), and the
/// column variable if the index is `row * n + col`.
fn product_load(e: &VExpr, pk: u32) -> Option<(IExpr, Option<u32>)> {
    match e {
        VExpr::Load { buf, index } if *buf == pk => {
            let col = match index {
                IExpr::Add(_, c) => match c.as_ref() {
                    IExpr::Var(c) => Some(*c),
                    _ => None,
                },
                _ => None,
            };
            Some((index.clone(), col))
        }
        VExpr::Binary(BinaryOp::Add, a, b) => product_load(a, pk).or_else(|| product_load(b, pk)),
        _ => None,
    }
}

/// True if `index` is `r * n + col` for some `r`, with `n` the product's last dim written as
/// the kernel writes it, so that `col` is the element's column.
fn row_major(k: &KernelFn, index: &IExpr, col: u32, n: &Dim) -> bool {
    let IExpr::Add(row, c) = index else { return false };
    if **c != IExpr::Var(col) {
        return false;
    }
    let IExpr::Mul(_, stride) = row.as_ref() else {
        return false;
    };
    let as_dim = |e: &IExpr| match e {
        IExpr::Const(c) => Some(Dim::c(*c)),
        IExpr::Dim(d) => k.dims.get(*d as usize).map(|name| Dim::sym(name)),
        _ => None,
    };
    as_dim(stride).as_ref() == Some(n) && loop_extent(&k.body, col).and_then(|e| as_dim(&e)).as_ref() == Some(n)
}

/// The extent of the loop over `var` in `body`.
fn loop_extent(body: &[KStmt], var: u32) -> Option<IExpr> {
    body.iter().find_map(|s| match s {
        KStmt::Loop { var: v, extent, .. } if *v == var => Some(extent.clone()),
        KStmt::Loop { body, .. } => loop_extent(body, var),
        _ => None,
    })
}

/// If step `s` is a product whose only reader is an epilogue kernel: that step's position, the
/// epilogue and the kernel's output buffer.
fn candidate(kernels: &[KernelFn], f: &FunctionPlan, s: usize) -> Option<(usize, MatMulEpilogue, BufId)> {
    let (reader, t) = sole_kernel_reader(kernels, f, s)?;
    let Step::Kernel { kernel, bufs, .. } = &f.steps[reader] else {
        return None;
    };
    let (epilogue, out) = Matcher { f, bufs, product: t }.kernel(kernels.get(*kernel as usize)?)?;
    Some((reader, epilogue, out))
}

struct Matcher<'a> {
    f: &'a FunctionPlan,
    /// The kernel step's buffers, in the kernel's order.
    bufs: &'a [BufId],
    product: BufId,
}

/// The parts of an epilogue found in an expression: kernel buffer indices.
#[derive(Default, Clone, Copy, PartialEq)]
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
    v.operand_where(op, |c| is_const(c).then_some(()))
        .map(|(_, other)| other)
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
