//! Loop-invariant code motion on the Kernel IR.
//!
//! Fusion inlines whole expression trees, so a loop body often recomputes values that do not
//! change inside the loop: layer norm's `rsqrt(var / n + eps)` and `mean / n` in every element
//! of the row, softmax's "safe" maximum in every element. [`hoist_invariants`] moves each
//! maximal such subexpression into a `let` just before the loop, innermost loops first, so a
//! value invariant in several nested loops climbs to the outermost one it is invariant in.
//!
//! What moves: pure arithmetic (unary, binary, select, cast) over constants and variables
//! defined outside the loop and never assigned inside it. What stays: loads (a store in the
//! loop could change what they read), index expressions (an integer division by a dim that is
//! zero when the loop runs no iterations must not be evaluated), and bare constants and
//! variables (nothing to save). A backend sees an ordinary `let`; evaluating the expression
//! once instead of once per iteration gives the same bits.

use std::collections::{HashMap, HashSet};

use super::{KStmt, KernelFn, VExpr};
use crate::dtype::DType;

/// Hoists loop-invariant subexpressions out of every loop of `k` (not out of the parallel loop,
/// whose body is `k.body`).
pub fn hoist_invariants(k: &mut KernelFn) {
    let (dtypes, next) = var_table(k);
    let mut body = std::mem::take(&mut k.body);
    Hoister { k, dtypes, next }.block(&mut body);
    k.body = body;
}

struct Hoister<'a> {
    k: &'a KernelFn,
    /// The dtype of every `let` and accumulator variable.
    dtypes: HashMap<u32, DType>,
    /// The next free variable id.
    next: u32,
}

impl Hoister<'_> {
    /// Processes the loops of a statement list, inserting hoisted `let`s before each loop. A
    /// hoisted value that an earlier `let` of this list already computes (softmax's safe maximum,
    /// hoisted from both the sum loop and the output loop) reuses that variable instead.
    fn block(&mut self, stmts: &mut Vec<KStmt>) {
        let mut out: Vec<KStmt> = Vec::with_capacity(stmts.len());
        for mut s in stmts.drain(..) {
            let mut renamed = HashMap::new();
            if let KStmt::Loop { body, .. } = &mut s {
                self.block(body);
                for mut h in self.hoist_from(body) {
                    let KStmt::Let { var, dtype, value } = &mut h else {
                        unreachable!("only lets are hoisted")
                    };
                    rename_vars(value, &renamed);
                    match earlier_let(&out, *dtype, value) {
                        Some(same) => {
                            renamed.insert(*var, same);
                        }
                        None => out.push(h),
                    }
                }
            }
            if !renamed.is_empty() {
                rename_in_stmt(&mut s, &renamed);
            }
            out.push(s);
        }
        *stmts = out;
    }

    /// Takes the invariant work out of one loop body (whose nested loops were processed
    /// already: what they hoisted is a `let` of this body) and returns the `let`s to put before
    /// the loop. A `let` whose whole value is invariant moves out as it is.
    fn hoist_from(&mut self, body: &mut Vec<KStmt>) -> Vec<KStmt> {
        let mut inside = HashSet::new();
        defined_or_assigned(body, &mut inside);
        let mut hoisted = Vec::new();
        let mut kept = Vec::with_capacity(body.len());
        for mut st in body.drain(..) {
            match &mut st {
                KStmt::Let { var, value, .. } if invariant(value, &inside) => {
                    inside.remove(var);
                    hoisted.push(st);
                    continue;
                }
                st => {
                    if let Some(e) = st.expr_mut() {
                        self.expr(e, &inside, &mut hoisted);
                    }
                }
            }
            kept.push(st);
        }
        *body = kept;
        hoisted
    }

    /// Replaces each maximal invariant, non-trivial subexpression of `e` by a new variable.
    fn expr(&mut self, e: &mut VExpr, inside: &HashSet<u32>, hoisted: &mut Vec<KStmt>) {
        if invariant(e, inside) {
            if !matches!(e, VExpr::Const(_) | VExpr::Var(_)) {
                // The same expression hoisted from elsewhere in this body: reuse its variable.
                let same = hoisted.iter().find_map(|h| match h {
                    KStmt::Let { var, value, .. } if value == e => Some(*var),
                    _ => None,
                });
                if let Some(var) = same {
                    *e = VExpr::Var(var);
                    return;
                }
                let dtype = self
                    .k
                    .dtype_of(e, &|v| self.dtypes.get(&v).copied().unwrap_or(DType::F32));
                let var = self.next;
                self.next += 1;
                self.dtypes.insert(var, dtype);
                let value = std::mem::replace(e, VExpr::Var(var));
                hoisted.push(KStmt::Let { var, dtype, value });
            }
            return;
        }
        match e {
            VExpr::Unary(_, x) | VExpr::Cast(_, x) => self.expr(x, inside, hoisted),
            VExpr::Binary(_, a, b) => {
                self.expr(a, inside, hoisted);
                self.expr(b, inside, hoisted);
            }
            VExpr::Select(c, a, b) => {
                self.expr(c, inside, hoisted);
                self.expr(a, inside, hoisted);
                self.expr(b, inside, hoisted);
            }
            VExpr::Load { .. } | VExpr::Const(_) | VExpr::Var(_) | VExpr::Index(_) => {}
        }
    }
}

/// True when `e` is pure arithmetic over constants and variables not in `inside`.
pub(super) fn invariant(e: &VExpr, inside: &HashSet<u32>) -> bool {
    match e {
        VExpr::Const(_) => true,
        VExpr::Var(v) => !inside.contains(v),
        VExpr::Load { .. } | VExpr::Index(_) => false,
        VExpr::Unary(_, x) | VExpr::Cast(_, x) => invariant(x, inside),
        VExpr::Binary(_, a, b) => invariant(a, inside) && invariant(b, inside),
        VExpr::Select(c, a, b) => invariant(c, inside) && invariant(a, inside) && invariant(b, inside),
    }
}

/// The variables a loop body defines (lets, accumulators, loop variables) or assigns.
pub(super) fn defined_or_assigned(stmts: &[KStmt], out: &mut HashSet<u32>) {
    for s in stmts {
        match s {
            KStmt::Let { var, .. } | KStmt::Acc { var, .. } | KStmt::Assign { var, .. } => {
                out.insert(*var);
            }
            KStmt::Loop { var, body, .. } => {
                out.insert(*var);
                defined_or_assigned(body, out);
            }
            KStmt::Store { .. } => {}
        }
    }
}

/// The dtype of every `let` and accumulator of `k`, and the first variable id no statement
/// (nor the parallel index) uses: what a rewrite needs to type expressions and add `let`s.
pub(super) fn var_table(k: &KernelFn) -> (HashMap<u32, DType>, u32) {
    let mut dtypes = HashMap::new();
    let mut next = k.parallel.0 + 1;
    collect_vars(&k.body, &mut dtypes, &mut next);
    (dtypes, next)
}

/// The dtypes of all `let`s and accumulators, and one past the largest variable id.
fn collect_vars(stmts: &[KStmt], dtypes: &mut HashMap<u32, DType>, next: &mut u32) {
    for s in stmts {
        match s {
            KStmt::Let { var, dtype, .. } | KStmt::Acc { var, dtype, .. } => {
                dtypes.insert(*var, *dtype);
                *next = (*next).max(var + 1);
            }
            KStmt::Loop { var, body, .. } => {
                *next = (*next).max(var + 1);
                collect_vars(body, dtypes, next);
            }
            KStmt::Assign { .. } | KStmt::Store { .. } => {}
        }
    }
}

/// The variable of a `let` in `before` (searched from the end) that computes `value`, if none of
/// the variables `value` reads is assigned between that `let` and the end.
fn earlier_let(before: &[KStmt], dtype: DType, value: &VExpr) -> Option<u32> {
    let mut reads = HashSet::new();
    vars_read(value, &mut reads);
    for st in before.iter().rev() {
        match st {
            KStmt::Let {
                var,
                dtype: d,
                value: v,
            } if *d == dtype && v == value => return Some(*var),
            _ => {}
        }
        let mut assigned = HashSet::new();
        defined_or_assigned(std::slice::from_ref(st), &mut assigned);
        if !assigned.is_disjoint(&reads) {
            return None;
        }
    }
    None
}

/// The `let` and accumulator variables `e` reads.
pub(super) fn vars_read(e: &VExpr, out: &mut HashSet<u32>) {
    e.visit(&mut |x| {
        if let VExpr::Var(v) = x {
            out.insert(*v);
        }
    });
}

/// Replaces reads of the variables in `map` by their images.
fn rename_vars(e: &mut VExpr, map: &HashMap<u32, u32>) {
    e.visit_mut(&mut |x| {
        if let VExpr::Var(v) = x
            && let Some(to) = map.get(v)
        {
            *v = *to;
        }
    });
}

/// [`rename_vars`] in every expression of a statement.
fn rename_in_stmt(s: &mut KStmt, map: &HashMap<u32, u32>) {
    match s {
        KStmt::Loop { body, .. } => body.iter_mut().for_each(|b| rename_in_stmt(b, map)),
        s => s.expr_mut().into_iter().for_each(|e| rename_vars(e, map)),
    }
}
