//! Storing a reduction's per-element term for a later loop of the row to read back.
//!
//! Softmax sums `exp(x - max)` over a row, then writes `exp(x - max) / sum`: fusion inlines the
//! same transcendental into both loops, so it runs twice per element. [`reuse_reduction_terms`]
//! makes the reduction loop also store its term into the output, and the output loop read it
//! back instead of recomputing it:
//!
//! ```text
//! for i in 0..D { s = add(s, exp(sub(x[i], m))) }         for i in 0..D { let t = exp(sub(x[i], m)); y[i] = t; s = add(s, t) }
//! for j in 0..D { y[j] = div(exp(sub(x[j], m)), s) }  ->  for j in 0..D { y[j] = div(y[j], s) }
//! ```
//!
//! One transcendental per element instead of two, for a store and a load of a row that the
//! cache still holds. The stored bits are the ones the second loop would have computed, so the
//! result is unchanged.
//!
//! The rewrite applies when, in one statement list:
//! - a loop's body is a single reduction `acc = acc op term` whose `term` calls a
//!   transcendental (`exp`, `log`, `tanh`, `sigmoid`, `erf`, `sin`, `cos`, `pow`) on a load that
//!   moves with the loop;
//! - a later loop of the same extent has only `let`s and one store, to a buffer of the term's
//!   dtype that nothing else in the kernel stores, and contains the term (with its loop
//!   variable in place of the first's);
//! - no variable the term reads is assigned from the first loop on.
//!
//! The second loop writes every element the first one stored (same extent, same index), after
//! reading it back. A buffer written twice is never planned in place over an input, so the
//! first loop's store cannot clobber an element a later loop reads.

use std::collections::{HashMap, HashSet};

use super::hoist::{defined_or_assigned, var_table, vars_read};
use super::{IExpr, KStmt, KernelFn, VExpr};
use crate::dtype::DType;
use crate::op::{BinaryOp, UnaryOp};

/// Applies the rewrite of the module docs wherever it fits in `k`.
pub fn reuse_reduction_terms(k: &mut KernelFn) {
    let (dtypes, next) = var_table(k);
    let mut stores = HashMap::new();
    count_stores(&k.body, &mut stores);
    let mut body = std::mem::take(&mut k.body);
    Reuser {
        k,
        dtypes,
        next,
        stores,
    }
    .block(&mut body);
    k.body = body;
}

struct Reuser<'a> {
    k: &'a KernelFn,
    dtypes: HashMap<u32, DType>,
    next: u32,
    /// How many stores to each buffer the kernel has.
    stores: HashMap<u32, usize>,
}

impl Reuser<'_> {
    fn block(&mut self, stmts: &mut [KStmt]) {
        for s in stmts.iter_mut() {
            if let KStmt::Loop { body, .. } = s {
                self.block(body);
            }
        }
        for first in 0..stmts.len() {
            let Some((var, extent, term)) = reduction_term(&stmts[first]) else {
                continue;
            };
            let dtype = self
                .k
                .dtype_of(&term, &|v| self.dtypes.get(&v).copied().unwrap_or(DType::F32));
            let mut reads = HashSet::new();
            vars_read(&term, &mut reads);
            for second in first + 1..stmts.len() {
                let mut assigned = HashSet::new();
                defined_or_assigned(&stmts[first..=second], &mut assigned);
                if !assigned.is_disjoint(&reads) {
                    break;
                }
                let Some(r) = self.reader(&stmts[second], var, &extent, &term, dtype) else {
                    continue;
                };
                let t = self.next;
                self.next += 1;
                self.dtypes.insert(t, dtype);
                *self.stores.entry(r.buf).or_default() += 1;
                store_term(&mut stmts[first], t, dtype, r.buf, rename_index(&r.index, r.var, var));
                let load = VExpr::Load {
                    buf: r.buf,
                    index: r.index,
                };
                if let KStmt::Loop { body, .. } = &mut stmts[second] {
                    for e in body.iter_mut().filter_map(KStmt::expr_mut) {
                        replace(e, &r.term, &load);
                    }
                }
                break;
            }
        }
    }

    /// If loop `s` can read the term back: what it stores and where, and the term in its loop
    /// variable.
    fn reader(&self, s: &KStmt, var: u32, extent: &IExpr, term: &VExpr, dtype: DType) -> Option<Reader> {
        let KStmt::Loop {
            var: v2,
            extent: e2,
            body,
            ..
        } = s
        else {
            return None;
        };
        if e2 != extent {
            return None;
        }
        let mut store = None;
        for st in body {
            match st {
                KStmt::Let { .. } => {}
                KStmt::Store { buf, index, .. } if store.is_none() => store = Some((*buf, index)),
                _ => return None,
            }
        }
        let (buf, index) = store?;
        let single = self.stores.get(&buf) == Some(&1);
        if !single || self.k.bufs.get(buf as usize).map(|b| b.dtype) != Some(dtype) {
            return None;
        }
        let term = rename_loop_var(term, var, *v2);
        let found = body.iter().filter_map(KStmt::expr).any(|e| contains(e, &term));
        found.then(|| Reader {
            buf,
            index: index.clone(),
            var: *v2,
            term,
        })
    }
}

/// A loop that can read a reduction's term back from the buffer it stores.
struct Reader {
    /// The buffer and index of its only store.
    buf: u32,
    index: IExpr,
    /// Its loop variable.
    var: u32,
    /// The term, in its loop variable.
    term: VExpr,
}

/// A loop whose body is one reduction `acc = acc op term` with a transcendental `term` that
/// loads something moving with the loop: the loop variable, its extent and the term.
fn reduction_term(s: &KStmt) -> Option<(u32, IExpr, VExpr)> {
    let KStmt::Loop { var, extent, body, .. } = s else {
        return None;
    };
    let [KStmt::Assign { var: acc, value }] = body.as_slice() else {
        return None;
    };
    let VExpr::Binary(op, a, b) = value else {
        return None;
    };
    if !matches!(op, BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min) {
        return None;
    }
    let term = match (a.as_ref(), b.as_ref()) {
        (VExpr::Var(x), t) | (t, VExpr::Var(x)) if x == acc => t,
        _ => return None,
    };
    let mut reads = HashSet::new();
    vars_read(term, &mut reads);
    let ok = !reads.contains(acc) && transcendental(term) && loads_moving_with(term, *var);
    ok.then(|| (*var, extent.clone(), term.clone()))
}

/// Turns reduction loop `s` into `let t = term; buf[index] = t; acc = acc op t`.
fn store_term(s: &mut KStmt, t: u32, dtype: DType, buf: u32, index: IExpr) {
    let KStmt::Loop { body, .. } = s else {
        return;
    };
    let Some(KStmt::Assign { var: acc, value }) = body.pop() else {
        return;
    };
    let VExpr::Binary(op, a, b) = value else {
        return;
    };
    let (a, b, term) = match (*a, *b) {
        (VExpr::Var(x), term) if x == acc => (VExpr::Var(x), VExpr::Var(t), term),
        (term, b) => (VExpr::Var(t), b, term),
    };
    body.push(KStmt::Let {
        var: t,
        dtype,
        value: term,
    });
    body.push(KStmt::Store {
        buf,
        index,
        value: VExpr::Var(t),
    });
    body.push(KStmt::Assign {
        var: acc,
        value: VExpr::Binary(op, Box::new(a), Box::new(b)),
    });
}

fn count_stores(stmts: &[KStmt], out: &mut HashMap<u32, usize>) {
    for s in stmts {
        match s {
            KStmt::Store { buf, .. } => *out.entry(*buf).or_default() += 1,
            KStmt::Loop { body, .. } => count_stores(body, out),
            _ => {}
        }
    }
}

/// True when `e` calls a function much dearer than a load and a store.
fn transcendental(e: &VExpr) -> bool {
    e.any(&|x| {
        matches!(
            x,
            VExpr::Unary(
                UnaryOp::Exp
                    | UnaryOp::Log
                    | UnaryOp::Tanh
                    | UnaryOp::Sigmoid
                    | UnaryOp::Erf
                    | UnaryOp::Sin
                    | UnaryOp::Cos,
                _
            ) | VExpr::Binary(BinaryOp::Pow, _, _)
        )
    })
}

/// True when some load in `e` has an index that mentions loop variable `v`.
fn loads_moving_with(e: &VExpr, v: u32) -> bool {
    e.any(&|x| matches!(x, VExpr::Load { index, .. } if !index.independent_of(v)))
}

/// `e` with loop variable `from` replaced by `to` in every index.
fn rename_loop_var(e: &VExpr, from: u32, to: u32) -> VExpr {
    let r = |x: &VExpr| Box::new(rename_loop_var(x, from, to));
    match e {
        VExpr::Load { buf, index } => VExpr::Load {
            buf: *buf,
            index: rename_index(index, from, to),
        },
        VExpr::Index(i) => VExpr::Index(rename_index(i, from, to)),
        VExpr::Unary(op, x) => VExpr::Unary(*op, r(x)),
        VExpr::Cast(d, x) => VExpr::Cast(*d, r(x)),
        VExpr::Binary(op, a, b) => VExpr::Binary(*op, r(a), r(b)),
        VExpr::Select(c, a, b) => VExpr::Select(r(c), r(a), r(b)),
        VExpr::Const(_) | VExpr::Var(_) => e.clone(),
    }
}

fn rename_index(i: &IExpr, from: u32, to: u32) -> IExpr {
    let r = |x: &IExpr| Box::new(rename_index(x, from, to));
    match i {
        IExpr::Var(v) if *v == from => IExpr::Var(to),
        IExpr::Const(_) | IExpr::Var(_) | IExpr::Dim(_) => i.clone(),
        IExpr::Add(a, b) => IExpr::Add(r(a), r(b)),
        IExpr::Mul(a, b) => IExpr::Mul(r(a), r(b)),
        IExpr::Div(a, b) => IExpr::Div(r(a), r(b)),
        IExpr::Rem(a, b) => IExpr::Rem(r(a), r(b)),
    }
}

fn contains(e: &VExpr, needle: &VExpr) -> bool {
    e.any(&|x| x == needle)
}

/// Replaces every occurrence of `needle` in `e` by `with`.
fn replace(e: &mut VExpr, needle: &VExpr, with: &VExpr) {
    e.visit_mut(&mut |x| {
        if x == needle {
            *x = with.clone();
        }
    });
}
