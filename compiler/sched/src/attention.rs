//! Recognising scaled dot-product attention as `std.attention.attention` composes it, so that
//! it runs as one [`mlc_ir::Step::Attention`] (the blocked online-softmax kernel) instead of two
//! matrix products around a softmax over a materialised `[B, H, Tq, Tk]` score matrix.
//!
//! The match is structural and exact, rooted at the product `p @ v`:
//!
//! ```text
//! s = (q @ transpose(k)) * scale               // scale: an f32 scalar constant (or absent)
//! s = where(mask, s, -inf) | s + additive      // any number of boolean masks, one additive
//! m = max(s, -1, keepdim); m = where(m > -inf, m, 0)
//! z = exp(s - m); d = sum(z, -1, keepdim)
//! out = (z / where(d > 0, d, 1)) @ v
//! ```
//!
//! Every intermediate value must be used only inside the pattern (nothing else may need the
//! scores or the probabilities). The causal mask of `std.attention.causal_mask`
//! (`iota(1) + a <= iota(0) + b` over `[Tq, Tk]` with `b - a == Tk - Tq`) becomes the kernel's
//! `causal` flag; the other boolean masks are combined with `and` into one mask. Keys and values
//! repeated by `repeat_kv` (grouped-query heads) are passed un-repeated. Anything else keeps the
//! generic path.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use mlc_ir::{BinaryOp, DType, Dim, Graph, LiteralData, NodeId, Op, ReduceOp, UnaryOp, Value};

use crate::classify::transposed_source;

/// One recognised attention, rooted at the product `p @ v`.
#[derive(Clone, Debug)]
pub struct AttnMatch {
    pub q: Value,
    pub k: Value,
    pub v: Value,
    pub scale: f32,
    pub causal: bool,
    pub bool_mask: Option<Value>,
    pub additive_mask: Option<Value>,
    /// The nodes the attention step replaces (scores, softmax): they get no buffer or step.
    pub interior: Vec<NodeId>,
    /// Those of `interior` that compute `(q @ kᵀ) * scale`, which several attentions may share
    /// (common subexpressions): every user must be inside a recognised attention.
    pub shared: Vec<NodeId>,
    /// Nodes added to the graph for this attention's operands (a permute of the keys, masks
    /// combined), in creation order: planned right before the attention.
    pub added: Vec<NodeId>,
}

impl AttnMatch {
    /// The values the attention step reads.
    pub fn operands(&self) -> Vec<Value> {
        let mut v = vec![self.q, self.k, self.v];
        v.extend(self.bool_mask.iter().chain(&self.additive_mask));
        v
    }
}

/// Finds every attention in `g`, adding the nodes that combine several boolean masks into one
/// and the keys' permute. `g` is copied only if such nodes are needed: a copy of a large
/// graph costs more than the rest of planning it.
pub fn find_attention(g: &mut Cow<'_, Graph>) -> HashMap<NodeId, AttnMatch> {
    let Ok(order) = g.topo_order() else {
        return HashMap::new();
    };
    let mut found: Vec<(NodeId, AttnMatch, Vec<Value>, KPermute)> = Vec::new();
    for &n in &order {
        if let Some((m, masks, kp)) = match_root(g, n) {
            found.push((n, m, masks, kp));
        }
    }
    // Nodes for the operands: the keys' permute, the masks combined.
    let mut built: Vec<(NodeId, AttnMatch)> = Vec::new();
    'found: for (root, mut m, masks, k_permute) in found {
        let origin = g.node(root).origin.clone();
        if let Some((x, perm)) = k_permute {
            let Ok(id) = g.to_mut().add(Op::Permute(perm), &[x], origin.clone()) else {
                continue;
            };
            m.k = Value::of(id);
            m.added.push(id);
        }
        for c in masks {
            m.bool_mask = Some(match m.bool_mask {
                None => c,
                Some(prev) => {
                    let Ok(id) = g.to_mut().add(Op::Binary(BinaryOp::And), &[prev, c], origin.clone()) else {
                        continue 'found;
                    };
                    m.added.push(id);
                    Value::of(id)
                }
            });
        }
        built.push((root, m));
    }
    // The shared part of each match must be used only by recognised attentions, and no root may
    // be part of another match: drop those that fail until none does. (Nodes added for a dropped
    // match have no users: they get no buffer.)
    let outputs: HashSet<NodeId> = g.outputs.iter().map(|(_, v)| v.node).collect();
    loop {
        let inside: HashSet<NodeId> = built.iter().flat_map(|(_, m)| m.interior.iter().copied()).collect();
        let before = built.len();
        built.retain(|(root, m)| {
            !inside.contains(root)
                && m.shared
                    .iter()
                    .all(|&n| !outputs.contains(&n) && g.users(n).iter().all(|(u, _, _)| inside.contains(u)))
        });
        if built.len() == before {
            break;
        }
    }
    built.into_iter().collect()
}

fn is_scalar_float(g: &Graph, v: Value, want: impl Fn(f64) -> bool) -> bool {
    scalar_float(g, v).is_some_and(want)
}

fn scalar_float(g: &Graph, v: Value) -> Option<f64> {
    match &g.node(v.node).op {
        Op::Const(lit) if lit.shape.is_empty() && lit.dtype == DType::F32 => match &lit.data {
            LiteralData::Float(x) if x.len() == 1 => Some(x[0]),
            _ => None,
        },
        _ => None,
    }
}

/// A scalar integer constant or dim, as a dim.
fn scalar_dim(g: &Graph, v: Value) -> Option<Dim> {
    match &g.node(v.node).op {
        Op::Const(lit) if lit.shape.is_empty() => match &lit.data {
            LiteralData::Int(x) if x.len() == 1 => Some(Dim::c(x[0])),
            _ => None,
        },
        Op::DimSize(d) if g.ty(v).rank() == 0 => Some(d.clone()),
        _ => None,
    }
}

/// `(op, operands)` of a single-result node.
fn op_of(g: &Graph, v: Value) -> Option<(&Op, Vec<Value>)> {
    let node = g.node(v.node);
    (v.index == 0 && node.outputs.len() == 1).then(|| (&node.op, g.operands(v.node)))
}

fn is_trailing_keepdim(op: &Op, want: ReduceOp) -> bool {
    matches!(op, Op::Reduce { op, axes, keepdim: true } if *op == want && axes.as_slice() == [3])
}

struct Chain {
    mm: Value,
    /// The nodes of `(q @ kᵀ) * scale`.
    base: Vec<NodeId>,
    scale: f32,
    masks: Vec<Value>,
    additive: Option<Value>,
    interior: Vec<NodeId>,
}

/// Peels masks off the scores `s` (of type `full`) down to `(q @ kᵀ) * scale`.
fn peel(g: &Graph, s: Value, full: &mlc_ir::TensorType, mut acc: Chain) -> Option<Chain> {
    if g.ty(s) != full {
        return None;
    }
    let (op, ops) = op_of(g, s)?;
    match op {
        Op::MatMul => {
            acc.mm = s;
            acc.interior.push(s.node);
            acc.base.push(s.node);
            Some(acc)
        }
        Op::Binary(BinaryOp::Mul) => {
            let (x, c) = if scalar_float(g, ops[1]).is_some() {
                (ops[0], ops[1])
            } else {
                (ops[1], ops[0])
            };
            let scale = scalar_float(g, c)?;
            if !matches!(g.node(x.node).op, Op::MatMul) || g.ty(x) != full {
                return None;
            }
            acc.scale = scale as f32;
            acc.interior.push(s.node);
            acc.interior.push(x.node);
            acc.base.extend([s.node, x.node]);
            acc.mm = x;
            Some(acc)
        }
        Op::Select => {
            if !is_scalar_float(g, ops[2], |x| x == f64::NEG_INFINITY) || g.ty(ops[0]).dtype != DType::Bool {
                return None;
            }
            if g.ty(ops[0]).rank() > 4 {
                return None;
            }
            acc.masks.push(ops[0]);
            acc.interior.push(s.node);
            peel(g, ops[1], full, acc)
        }
        Op::Binary(BinaryOp::Add) if acc.additive.is_none() => {
            for (x, a) in [(ops[0], ops[1]), (ops[1], ops[0])] {
                let ta = g.ty(a);
                if ta.dtype != DType::F32 || ta.rank() > 4 {
                    continue;
                }
                let mut next = Chain {
                    mm: acc.mm,
                    base: acc.base.clone(),
                    scale: acc.scale,
                    masks: acc.masks.clone(),
                    additive: Some(a),
                    interior: acc.interior.clone(),
                };
                next.interior.push(s.node);
                if let Some(done) = peel(g, x, full, next) {
                    return Some(done);
                }
            }
            None
        }
        _ => None,
    }
}

/// If `v` is `repeat_kv(x, n)` (`reshape(expand(x[:, :, None], [b, hkv, n, t, d]), [b, hkv * n,
/// t, d])`), `(x, n)`.
fn unrepeat(g: &Graph, v: Value) -> Option<(Value, Dim)> {
    let (Op::Reshape(_), ops) = op_of(g, v)? else {
        return None;
    };
    let e = ops[0];
    let (Op::Expand(_), ops) = op_of(g, e)? else {
        return None;
    };
    let r = ops[0];
    let (Op::Reshape(_), ops) = op_of(g, r)? else {
        return None;
    };
    let x = ops[0];
    let (tv, te, tr, tx) = (g.ty(v), g.ty(e), g.ty(r), g.ty(x));
    if tx.rank() != 4 || te.rank() != 5 || tr.rank() != 5 || tx.dtype != tv.dtype {
        return None;
    }
    let (xs, es, rs, vs) = (&tx.shape, &te.shape, &tr.shape, &tv.shape);
    let one = Dim::c(1);
    let ok = rs[..2] == xs[..2]
        && rs[2] == one
        && rs[3..] == xs[2..]
        && es[..2] == xs[..2]
        && es[3..] == xs[2..]
        && vs[0] == xs[0]
        && vs[1] == &xs[1] * &es[2]
        && vs[2..] == xs[2..];
    ok.then(|| (x, es[2].clone()))
}

/// True if `c` is `std.attention.causal_mask(tq, tk)`.
fn is_causal(g: &Graph, c: Value, tq: &Dim, tk: &Dim) -> bool {
    let ty = g.ty(c);
    if ty.rank() != 2 || ty.shape[0] != *tq || ty.shape[1] != *tk {
        return false;
    }
    let Some((Op::Binary(BinaryOp::Le), ops)) = op_of(g, c) else {
        return false;
    };
    // `iota(axis) + offset`, or a bare iota.
    let side = |v: Value, axis: usize| -> Option<Dim> {
        let iota = |w: Value| {
            matches!(&g.node(w.node).op, Op::Iota { axis: a, .. } if *a == axis) && g.ty(w).shape == ty.shape
        };
        if iota(v) {
            return Some(Dim::c(0));
        }
        let (Op::Binary(BinaryOp::Add), o) = op_of(g, v)? else {
            return None;
        };
        if iota(o[0]) {
            scalar_dim(g, o[1])
        } else if iota(o[1]) {
            scalar_dim(g, o[0])
        } else {
            None
        }
    };
    match (side(ops[0], 1), side(ops[1], 0)) {
        (Some(a), Some(b)) => &b - &a == tk - tq,
        _ => false,
    }
}

/// The keys as a permute of another value (`x`, the permutation): a node to add.
type KPermute = Option<(Value, Vec<usize>)>;

/// The attention rooted at `root` (`p @ v`), with its boolean masks not yet combined and the
/// keys' permute (if they are not a transposed value) not yet added.
fn match_root(g: &Graph, root: NodeId) -> Option<(AttnMatch, Vec<Value>, KPermute)> {
    let rv = Value::of(root);
    let (Op::MatMul, ops) = op_of(g, rv)? else { return None };
    let out_ty = g.ty(rv);
    if out_ty.dtype != DType::F32 || out_ty.rank() != 4 {
        return None;
    }
    let (p, v) = (ops[0], ops[1]);
    let full = g.ty(p).clone();
    if full.rank() != 4 || full.dtype != DType::F32 {
        return None;
    }
    let mut interior = Vec::new();
    // p = z / where(d > 0, d, 1)
    let (Op::Binary(BinaryOp::Div), o) = op_of(g, p)? else {
        return None;
    };
    interior.push(p.node);
    let (z, den) = (o[0], o[1]);
    let (Op::Select, o) = op_of(g, den)? else { return None };
    interior.push(den.node);
    let (gt, d) = (o[0], o[1]);
    if !is_scalar_float(g, o[2], |x| x == 1.0) {
        return None;
    }
    let (Op::Binary(BinaryOp::Gt), o) = op_of(g, gt)? else {
        return None;
    };
    interior.push(gt.node);
    if o[0] != d || !is_scalar_float(g, o[1], |x| x == 0.0) {
        return None;
    }
    let (op, o) = op_of(g, d)?;
    if !is_trailing_keepdim(op, ReduceOp::Sum) || o[0] != z {
        return None;
    }
    interior.push(d.node);
    // z = exp(s - where(m > -inf, m, 0)), m = max(s)
    let (Op::Unary(UnaryOp::Exp), o) = op_of(g, z)? else {
        return None;
    };
    interior.push(z.node);
    let diff = o[0];
    let (Op::Binary(BinaryOp::Sub), o) = op_of(g, diff)? else {
        return None;
    };
    interior.push(diff.node);
    let (s, mfix) = (o[0], o[1]);
    let (Op::Select, o) = op_of(g, mfix)? else { return None };
    interior.push(mfix.node);
    let (gt2, m) = (o[0], o[1]);
    if !is_scalar_float(g, o[2], |x| x == 0.0) {
        return None;
    }
    let (Op::Binary(BinaryOp::Gt), o) = op_of(g, gt2)? else {
        return None;
    };
    interior.push(gt2.node);
    if o[0] != m || !is_scalar_float(g, o[1], |x| x == f64::NEG_INFINITY) {
        return None;
    }
    let (op, o) = op_of(g, m)?;
    if !is_trailing_keepdim(op, ReduceOp::Max) || o[0] != s {
        return None;
    }
    interior.push(m.node);
    if g.ty(z) != &full || g.ty(s) != &full {
        return None;
    }
    let chain = peel(
        g,
        s,
        &full,
        Chain {
            mm: s,
            base: Vec::new(),
            scale: 1.0,
            masks: Vec::new(),
            additive: None,
            interior,
        },
    )?;
    // mm = q @ transpose(k)
    let (Op::MatMul, o) = op_of(g, chain.mm)? else {
        return None;
    };
    let q = o[0];
    // k: the transposed operand's source, or (a permute of x) a permute of x to add.
    let (k, k_permute) = match transposed_source(g, o[1]) {
        Some(k) => (k, None),
        None => {
            let (Op::Permute(perm), po) = op_of(g, o[1])? else {
                return None;
            };
            let mut perm = perm.clone();
            if perm.len() != 4 {
                return None;
            }
            perm.swap(2, 3);
            (o[1], Some((po[0], perm)))
        }
    };
    let kt = match &k_permute {
        Some(_) => {
            let t = g.ty(k);
            let mut shape = t.shape.clone();
            shape.swap(2, 3);
            mlc_ir::TensorType::new(t.dtype, shape)
        }
        None => g.ty(k).clone(),
    };
    let (tq, tk, tv) = (g.ty(q), &kt, g.ty(v));
    if [tq, tk, tv].iter().any(|t| t.rank() != 4 || t.dtype != DType::F32) {
        return None;
    }
    let (qs, ks, vs, os) = (&tq.shape, &tk.shape, &tv.shape, &out_ty.shape);
    let shapes_ok = ks[0] == qs[0]
        && vs[0] == qs[0]
        && ks[1] == qs[1]
        && vs[1] == qs[1]
        && ks[3] == qs[3]
        && vs[2] == ks[2]
        && full.shape[..] == [qs[0].clone(), qs[1].clone(), qs[2].clone(), ks[2].clone()]
        && os[..] == [qs[0].clone(), qs[1].clone(), qs[2].clone(), vs[3].clone()];
    if !shapes_ok {
        return None;
    }
    // Nothing outside the pattern may use its intermediate values.
    let inside: HashSet<NodeId> = chain.interior.iter().copied().chain([root]).collect();
    let outputs: HashSet<NodeId> = g.outputs.iter().map(|(_, v)| v.node).collect();
    for &n in &chain.interior {
        if chain.base.contains(&n) {
            continue;
        }
        if outputs.contains(&n) || g.users(n).iter().any(|(u, _, _)| !inside.contains(u)) {
            return None;
        }
    }
    for x in [q, k, v].iter().chain(&chain.masks).chain(&chain.additive) {
        if inside.contains(&x.node) {
            return None;
        }
    }
    // Grouped-query heads: pass the un-repeated keys and values.
    let (k, v) = match (k_permute.is_none().then(|| unrepeat(g, k)).flatten(), unrepeat(g, v)) {
        (Some((k0, nk)), Some((v0, nv))) if nk == nv => (k0, v0),
        _ => (k, v),
    };
    let (tqd, tkd) = (&qs[2], &ks[2]);
    let mut causal = false;
    let mut masks = Vec::new();
    for c in chain.masks.into_iter().rev() {
        if is_causal(g, c, tqd, tkd) {
            causal = true;
        } else if !masks.contains(&c) {
            masks.push(c);
        }
    }
    Some((
        AttnMatch {
            q,
            k,
            v,
            scale: chain.scale,
            causal,
            bool_mask: None,
            additive_mask: chain.additive,
            interior: chain.interior,
            shared: chain.base,
            added: Vec::new(),
        },
        masks,
        k_permute,
    ))
}
