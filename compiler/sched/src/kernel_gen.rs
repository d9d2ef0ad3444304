//! Building Kernel IR: a value's expression tree at a multi-index, with movement ops turned into
//! index arithmetic, buffered values turned into loads, and reductions computed where they are
//! needed.
//!
//! A kernel is built as nested *levels*: level 0 is the body of the parallel index, level 1 the
//! inner loop over the last output axis, deeper levels the loops of reductions. A reduction met
//! inside an expression is computed at the outermost level where its index is known (for a
//! softmax, once per row before the inner loop) and memoised there, so `x - max(x)` and
//! `sum(exp(x - max(x)))` and the final division run as one kernel that walks each row a few
//! times while it is in cache.

use std::collections::HashMap;
use std::ops::Range;
use std::ops::{Add, Div, Mul, Rem};

use mlc_ir::plan::BufId;
use mlc_ir::{
    Access, ArgOp, BinaryOp, DType, Dim, Graph, IExpr, KBuf, KStmt, KernelFn, LiteralData, Op, ReduceOp, Scalar, VExpr,
    Value,
};

use crate::SchedError;

/// One level of loop nesting while a kernel is built.
#[derive(Default)]
struct Level {
    /// The loop variables this level introduces.
    vars: Vec<u32>,
    stmts: Vec<KStmt>,
    /// Reductions already computed at this level, by value and index.
    memo: HashMap<(Value, Vec<IExpr>), u32>,
}

/// Builds one kernel.
pub struct KernelBuilder<'a> {
    g: &'a Graph,
    /// The plan buffer of every buffered value, and the dtype of every plan buffer.
    buffers: &'a HashMap<Value, BufId>,
    buf_dtypes: &'a [DType],
    pub bufs: Vec<KBuf>,
    /// The plan buffer behind each kernel buffer.
    pub args: Vec<BufId>,
    /// Symbol names of the dims the kernel reads.
    pub dims: Vec<String>,
    next_var: u32,
    function: &'a str,
    /// The value this kernel produces: computed here even though it has a buffer.
    root: Option<Value>,
    levels: Vec<Level>,
}

type R<T> = Result<T, SchedError>;

/// A finished kernel with the plan buffers and dim symbols to call it with.
pub type Built = (KernelFn, Vec<BufId>, Vec<String>);

impl<'a> KernelBuilder<'a> {
    pub fn new(g: &'a Graph, buffers: &'a HashMap<Value, BufId>, buf_dtypes: &'a [DType], function: &'a str) -> Self {
        KernelBuilder {
            g,
            buffers,
            buf_dtypes,
            bufs: Vec::new(),
            args: Vec::new(),
            dims: Vec::new(),
            next_var: 0,
            function,
            root: None,
            levels: Vec::new(),
        }
    }

    fn err(&self, message: String) -> SchedError {
        SchedError {
            function: self.function.to_string(),
            message,
        }
    }

    fn var(&mut self) -> u32 {
        self.next_var += 1;
        self.next_var - 1
    }

    /// The kernel buffer for a plan buffer, added on first use.
    fn buf(&mut self, b: BufId, access: Access) -> u32 {
        if let Some(i) = self.args.iter().position(|x| *x == b) {
            if access == Access::Write {
                self.bufs[i].access = Access::Write;
            }
            return i as u32;
        }
        self.args.push(b);
        self.bufs.push(KBuf {
            name: format!("b{b}"),
            dtype: self.buf_dtypes[b as usize],
            access,
        });
        (self.bufs.len() - 1) as u32
    }

    /// A run-time dim as an index expression over the kernel's dim arguments.
    fn dim(&mut self, d: &Dim) -> IExpr {
        let mut total = IExpr::Const(0);
        for (mono, coeff) in d.terms() {
            let mut term = IExpr::Const(coeff);
            for s in mono {
                let i = match self.dims.iter().position(|x| x == s) {
                    Some(i) => i,
                    None => {
                        self.dims.push(s.clone());
                        self.dims.len() - 1
                    }
                };
                term = Mul::mul(term, IExpr::Dim(i as u32));
            }
            total = Add::add(total, term);
        }
        total
    }

    /// Row-major element offset of a multi-index.
    fn linearize(&mut self, idx: &[IExpr], shape: &[Dim]) -> IExpr {
        let mut off = IExpr::Const(0);
        for (i, d) in idx.iter().zip(shape) {
            let n = self.dim(d);
            off = Add::add(Mul::mul(off, n), i.clone());
        }
        off
    }

    /// The multi-index of a row-major offset (one inside the shape: leading axes of size 1
    /// get index 0, and the outermost other axis the rest of the offset, with no remainder).
    fn delinearize(&mut self, off: IExpr, shape: &[Dim]) -> Vec<IExpr> {
        let mut idx = vec![IExpr::Const(0); shape.len()];
        let mut rest = off;
        let outer = shape.iter().position(|d| d.as_const() != Some(1)).unwrap_or(0);
        for k in (outer..shape.len()).rev() {
            let n = self.dim(&shape[k]);
            if k == outer {
                idx[k] = rest.clone();
            } else {
                idx[k] = Rem::rem(rest.clone(), n.clone());
                rest = Div::div(rest, n);
            }
        }
        idx
    }

    /// A load of a buffered value.
    fn load(&mut self, v: Value, idx: &[IExpr]) -> VExpr {
        let b = self.buffers[&v];
        let shape = self.g.ty(v).shape.clone();
        let kb = self.buf(b, Access::Read);
        VExpr::Load {
            buf: kb,
            index: self.linearize(idx, &shape),
        }
    }

    /// The expression computing element `idx` of `v`.
    fn expr(&mut self, v: Value, idx: &[IExpr]) -> R<VExpr> {
        if self.buffers.contains_key(&v) && self.root != Some(v) {
            return Ok(self.load(v, idx));
        }
        let node = self.g.node(v.node);
        let ops = self.g.operands(v.node);
        let out_shape = node.outputs[0].shape.clone();
        Ok(match &node.op {
            Op::Const(lit) => VExpr::Const(
                scalar_of(lit.dtype, &lit.data)
                    .ok_or_else(|| self.err(format!("constant of {} has no kernel form", lit.dtype)))?,
            ),
            Op::DimSize(d) => VExpr::Index(self.dim(d)),
            Op::Iota { axis, dtype, .. } => {
                let i = VExpr::Index(idx[*axis].clone());
                if *dtype == DType::I64 {
                    i
                } else {
                    VExpr::Cast(*dtype, Box::new(i))
                }
            }
            Op::Unary(u) => VExpr::Unary(*u, Box::new(self.expr(ops[0], idx)?)),
            Op::Binary(b) => {
                let x = self.broadcast_expr(ops[0], idx, &out_shape)?;
                let y = self.broadcast_expr(ops[1], idx, &out_shape)?;
                VExpr::Binary(*b, Box::new(x), Box::new(y))
            }
            Op::Select => {
                let c = self.broadcast_expr(ops[0], idx, &out_shape)?;
                let x = self.broadcast_expr(ops[1], idx, &out_shape)?;
                let y = self.broadcast_expr(ops[2], idx, &out_shape)?;
                VExpr::Select(Box::new(c), Box::new(x), Box::new(y))
            }
            Op::Cast(d) => VExpr::Cast(*d, Box::new(self.expr(ops[0], idx)?)),
            Op::Expand(_) => self.broadcast_expr(ops[0], idx, &out_shape)?,
            Op::Permute(perm) => {
                let mut src = vec![IExpr::Const(0); perm.len()];
                for (k, &p) in perm.iter().enumerate() {
                    src[p] = idx[k].clone();
                }
                self.expr(ops[0], &src)?
            }
            Op::Slice { axis, start, step, .. } => {
                let mut src = idx.to_vec();
                let s = self.dim(start);
                src[*axis] = Add::add(s, Mul::mul(idx[*axis].clone(), IExpr::Const(*step as i64)));
                self.expr(ops[0], &src)?
            }
            Op::Reshape(_) => {
                let in_shape = self.g.ty(ops[0]).shape.clone();
                let src = match reshape_groups(&in_shape, &out_shape) {
                    // Axes map group by group: only merged or split axes need index arithmetic.
                    Some(groups) => {
                        let mut src = Vec::with_capacity(in_shape.len());
                        for (ins, outs) in groups {
                            let off = self.linearize(&idx[outs.clone()], &out_shape[outs]);
                            src.extend(self.delinearize(off, &in_shape[ins]));
                        }
                        src
                    }
                    None => {
                        let off = self.linearize(idx, &out_shape);
                        self.delinearize(off, &in_shape)
                    }
                };
                self.expr(ops[0], &src)?
            }
            Op::Reduce { .. } | Op::ArgReduce { .. } => VExpr::Var(self.reduction(v, idx)?),
            other => return Err(self.err(format!("`{}` cannot be inlined into a kernel", other.mnemonic()))),
        })
    }

    /// Element `idx` (of a result with shape `out`) of an operand that broadcasts to `out`.
    fn broadcast_expr(&mut self, v: Value, idx: &[IExpr], out: &[Dim]) -> R<VExpr> {
        let shape = self.g.ty(v).shape.clone();
        let lead = out.len() - shape.len();
        let src: Vec<IExpr> = shape
            .iter()
            .enumerate()
            .map(|(k, d)| {
                if *d == Dim::c(1) && out[k + lead] != Dim::c(1) {
                    IExpr::Const(0)
                } else {
                    idx[k + lead].clone()
                }
            })
            .collect();
        self.expr(v, &src)
    }

    /// The outermost level at which every variable of `idx` is defined.
    fn level_of(&self, idx: &[IExpr]) -> usize {
        let mut level = 0;
        for (l, lv) in self.levels.iter().enumerate() {
            if lv.vars.iter().any(|&v| idx.iter().any(|e| !e.independent_of(v))) {
                level = l;
            }
        }
        level
    }

    /// Computes the reduction `v` (a reduce or arg-reduce node) at element `idx` of its result,
    /// at the outermost level where `idx` is known, once per level; returns the variable that
    /// holds it.
    fn reduction(&mut self, v: Value, idx: &[IExpr]) -> R<u32> {
        let target = self.level_of(idx);
        let key = (v, idx.to_vec());
        if let Some(&var) = self.levels[target].memo.get(&key) {
            return Ok(var);
        }
        let node = self.g.node(v.node);
        let x = self.g.operands(v.node)[0];
        let in_shape = self.g.ty(x).shape.clone();
        let dtype = self.g.ty(x).dtype;
        let (axes, keepdim) = match &node.op {
            Op::Reduce { axes, keepdim, .. } => (axes.clone(), *keepdim),
            Op::ArgReduce { axis, keepdim, .. } => (vec![*axis], *keepdim),
            _ => unreachable!("only reductions come here"),
        };
        if axes.is_empty() {
            // A reduction over no axes combines each element with the identity alone, which
            // is not always the element: `max` ignores NaN, so max(-inf, NaN) = -inf.
            let mut value = self.expr(x, idx)?;
            if let Op::Reduce { op, .. } = &node.op {
                let (init, combine) =
                    reduce_parts(*op, dtype).ok_or_else(|| self.err(format!("no kernel for {op:?} over {dtype}")))?;
                value = VExpr::Binary(combine, Box::new(VExpr::Const(init)), Box::new(value));
            }
            let var = self.var();
            let at = &mut self.levels[target];
            at.stmts.push(KStmt::Let { var, dtype, value });
            at.memo.insert(key, var);
            return Ok(var);
        }
        // The input index: kept axes from `idx`, reduced axes from new loop variables.
        let loop_vars: Vec<u32> = axes.iter().map(|_| self.var()).collect();
        let mut src = Vec::with_capacity(in_shape.len());
        let mut out_axis = 0;
        for a in 0..in_shape.len() {
            if let Some(k) = axes.iter().position(|x| *x == a) {
                src.push(IExpr::Var(loop_vars[k]));
                if keepdim {
                    out_axis += 1;
                }
            } else {
                src.push(idx[out_axis].clone());
                out_axis += 1;
            }
        }
        // Build the loop nest on top of the level stack, innermost level last.
        for &lv in &loop_vars {
            self.levels.push(Level {
                vars: vec![lv],
                ..Level::default()
            });
        }
        let value = self.expr(x, &src)?;
        let (decls, update) = match &node.op {
            Op::Reduce { op, .. } => {
                let acc = self.var();
                let (init, combine) =
                    reduce_parts(*op, dtype).ok_or_else(|| self.err(format!("no kernel for {op:?} over {dtype}")))?;
                let update = vec![KStmt::Assign {
                    var: acc,
                    value: VExpr::Binary(combine, Box::new(VExpr::Var(acc)), Box::new(value)),
                }];
                (
                    vec![KStmt::Acc {
                        var: acc,
                        dtype,
                        init: VExpr::Const(init),
                    }],
                    (acc, update),
                )
            }
            Op::ArgReduce { op, .. } => {
                let (decls, arg, update) = self.arg_update(*op, dtype, value, loop_vars[0])?;
                (decls, (arg, update))
            }
            _ => unreachable!("only reductions come here"),
        };
        let (result, update) = update;
        self.levels.last_mut().expect("pushed above").stmts.extend(update);
        let mut body = Vec::new();
        for (i, &lv) in loop_vars.iter().enumerate().rev() {
            let mut level = self.levels.pop().expect("pushed above");
            level.stmts.extend(body);
            let n = self.dim(&in_shape[axes[i]]);
            body = vec![KStmt::Loop {
                var: lv,
                extent: n,
                vectorize: false,
                body: level.stmts,
            }];
        }
        let at = &mut self.levels[target];
        at.stmts.extend(decls);
        at.stmts.extend(body);
        at.memo.insert(key, result);
        Ok(result)
    }

    /// Accumulators and the per-element update of an arg-reduction, with the interpreter's
    /// rules: the first extreme wins ties, the first NaN wins over everything, and the first
    /// element always replaces the initial value.
    fn arg_update(&mut self, op: ArgOp, dtype: DType, value: VExpr, j: u32) -> R<(Vec<KStmt>, u32, Vec<KStmt>)> {
        let (best, arg, v, better) = (self.var(), self.var(), self.var(), self.var());
        let (worst, cmp) = match (op, dtype) {
            (ArgOp::ArgMax, DType::F32) => (Scalar::F32(f32::NEG_INFINITY), BinaryOp::Gt),
            (ArgOp::ArgMin, DType::F32) => (Scalar::F32(f32::INFINITY), BinaryOp::Lt),
            (ArgOp::ArgMax, DType::I64) => (Scalar::I64(i64::MIN), BinaryOp::Gt),
            (ArgOp::ArgMin, DType::I64) => (Scalar::I64(i64::MAX), BinaryOp::Lt),
            (ArgOp::ArgMax, DType::I32) => (Scalar::I32(i32::MIN), BinaryOp::Gt),
            (ArgOp::ArgMin, DType::I32) => (Scalar::I32(i32::MAX), BinaryOp::Lt),
            _ => return Err(self.err(format!("no kernel for {op:?} over {dtype}"))),
        };
        let bin = |op, a: VExpr, b: VExpr| VExpr::Binary(op, Box::new(a), Box::new(b));
        let select = |c: VExpr, a: VExpr, b: VExpr| VExpr::Select(Box::new(c), Box::new(a), Box::new(b));
        let var = VExpr::Var;
        let mut wins = bin(cmp, var(v), var(best));
        if dtype == DType::F32 {
            let v_nan = bin(BinaryOp::Ne, var(v), var(v));
            let best_is_number = bin(BinaryOp::Eq, var(best), var(best));
            wins = bin(BinaryOp::Or, wins, bin(BinaryOp::And, v_nan, best_is_number));
        }
        let first = bin(BinaryOp::Eq, VExpr::Index(IExpr::Var(j)), VExpr::Const(Scalar::I64(0)));
        wins = bin(BinaryOp::Or, wins, first);
        let decls = vec![
            KStmt::Acc {
                var: best,
                dtype,
                init: VExpr::Const(worst),
            },
            KStmt::Acc {
                var: arg,
                dtype: DType::I64,
                init: VExpr::Const(Scalar::I64(0)),
            },
        ];
        let update = vec![
            KStmt::Let { var: v, dtype, value },
            KStmt::Let {
                var: better,
                dtype: DType::Bool,
                value: wins,
            },
            KStmt::Assign {
                var: arg,
                value: select(var(better), VExpr::Index(IExpr::Var(j)), var(arg)),
            },
            KStmt::Assign {
                var: best,
                value: select(var(better), var(v), var(best)),
            },
        ];
        Ok((decls, arg, update))
    }

    /// A kernel writing every element of `v` to `out`: the leading axes of `v` are flattened
    /// into the parallel index, the last axis is an inner loop (vectorised when every access in
    /// it is contiguous or broadcast).
    pub fn kernel(mut self, name: String, v: Value, out: BufId) -> R<Built> {
        self.root = Some(v);
        let shape = self.g.ty(v).shape.clone();
        let r = shape.len();
        let p = self.var();
        self.levels.push(Level {
            vars: vec![p],
            ..Level::default()
        });
        let ob = self.buf(out, Access::Write);
        let extent = if r == 0 {
            let value = self.expr(v, &[])?;
            self.levels[0].stmts.push(KStmt::Store {
                buf: ob,
                index: IExpr::Const(0),
                value,
            });
            IExpr::Const(1)
        } else {
            let extent = shape[..r - 1].iter().fold(IExpr::Const(1), |acc, d| {
                let n = self.dim(d);
                Mul::mul(acc, n)
            });
            let mut idx = self.delinearize(IExpr::Var(p), &shape[..r - 1]);
            let j = self.var();
            idx.push(IExpr::Var(j));
            let n = self.dim(&shape[r - 1]);
            self.levels.push(Level {
                vars: vec![j],
                ..Level::default()
            });
            let value = self.expr(v, &idx)?;
            let index = Add::add(Mul::mul(IExpr::Var(p), n.clone()), IExpr::Var(j));
            let store = KStmt::Store { buf: ob, index, value };
            let mut inner = self.levels.pop().expect("pushed above");
            let vectorize = inner.stmts.is_empty() && unit_stride_everywhere(&store, j, &self.bufs);
            inner.stmts.push(store);
            self.levels[0].stmts.push(KStmt::Loop {
                var: j,
                extent: n,
                vectorize,
                body: inner.stmts,
            });
            extent
        };
        let level = self.levels.pop().expect("pushed above");
        let mut k = KernelFn {
            name,
            bufs: self.bufs,
            dims: self.dims.clone(),
            parallel: (p, extent),
            body: level.stmts,
        };
        mlc_ir::kernel::reciprocal_of_invariant_divisors(&mut k);
        mlc_ir::kernel::hoist_invariants(&mut k);
        mlc_ir::kernel::reuse_reduction_terms(&mut k);
        Ok((k, self.args, self.dims))
    }
}

/// The identity and the combining op of a reduction.
fn reduce_parts(op: ReduceOp, dtype: DType) -> Option<(Scalar, BinaryOp)> {
    let s = |f: f32, i: i64| match dtype {
        DType::F32 => Some(Scalar::F32(f)),
        DType::I64 => Some(Scalar::I64(i)),
        DType::I32 => Some(Scalar::I32(i.clamp(i32::MIN as i64, i32::MAX as i64) as i32)),
        _ => None,
    };
    Some(match op {
        ReduceOp::Sum => (s(0.0, 0)?, BinaryOp::Add),
        ReduceOp::Prod => (s(1.0, 1)?, BinaryOp::Mul),
        ReduceOp::Max => (s(f32::NEG_INFINITY, i64::MIN)?, BinaryOp::Max),
        ReduceOp::Min => (s(f32::INFINITY, i64::MAX)?, BinaryOp::Min),
        ReduceOp::Any => (Scalar::Bool(false), BinaryOp::Or),
        ReduceOp::All => (Scalar::Bool(true), BinaryOp::And),
    })
}

/// The kernel constant of a scalar literal.
fn scalar_of(dtype: DType, data: &LiteralData) -> Option<Scalar> {
    match (dtype, data) {
        (DType::F32, LiteralData::Float(v)) => v.first().map(|x| Scalar::F32(*x as f32)),
        (DType::I64, LiteralData::Int(v)) => v.first().map(|x| Scalar::I64(*x)),
        (DType::I32, LiteralData::Int(v)) => v.first().map(|x| Scalar::I32(*x as i32)),
        (DType::Bool, LiteralData::Bool(v)) => v.first().map(|x| Scalar::Bool(*x)),
        _ => None,
    }
}

/// Splits the axes of a reshape into groups with equal element counts on both sides
/// (`[B, T, H, dh] -> [B, T, H*dh]` is `[B]=[B], [T]=[T], [H, dh]=[H*dh]`), so each output
/// group's index converts to its input group's index alone. `None` when no such grouping is
/// found (symbolic sizes that do not line up).
fn reshape_groups(input: &[Dim], output: &[Dim]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    // Sizes compared with every symbol at a large value, to pick which side grows next; the
    // groups are then checked exactly.
    let approx = |d: &Dim| -> i64 {
        d.terms()
            .map(|(m, c)| c.saturating_mul(1_000i64.saturating_pow(m.len() as u32)))
            .sum()
    };
    let (mut i, mut o) = (0, 0);
    let mut groups = Vec::new();
    while i < input.len() || o < output.len() {
        let (i0, o0) = (i, o);
        let (mut pi, mut po) = (Dim::c(1), Dim::c(1));
        loop {
            let grow_in = i < input.len() && (o >= output.len() || approx(&pi) <= approx(&po));
            if grow_in {
                pi = &pi * &input[i];
                i += 1;
            } else if o < output.len() {
                po = &po * &output[o];
                o += 1;
            } else {
                return None;
            }
            // Close the group once both sides agree, taking trailing size-1 axes along.
            if pi == po && i > i0 && o > o0 {
                while i < input.len() && input[i] == Dim::c(1) && (o >= output.len() || output[o] != Dim::c(1)) {
                    i += 1;
                }
                while o < output.len() && output[o] == Dim::c(1) && (i >= input.len() || input[i] != Dim::c(1)) {
                    o += 1;
                }
                break;
            }
        }
        groups.push((i0..i, o0..o));
    }
    Some(groups)
}

/// The per-iteration step of an index in loop variable `j`: `Some(0 or c)` when affine with a
/// constant step, `None` otherwise.
fn stride(e: &IExpr, j: u32) -> Option<i64> {
    if e.independent_of(j) {
        return Some(0);
    }
    match e {
        IExpr::Var(v) if *v == j => Some(1),
        IExpr::Add(a, b) => Some(stride(a, j)? + stride(b, j)?),
        IExpr::Mul(a, b) => match (a.as_ref(), b.as_ref()) {
            (IExpr::Const(c), x) | (x, IExpr::Const(c)) => Some(c * stride(x, j)?),
            _ => None,
        },
        _ => None,
    }
}

/// True when every load and store in `s` moves by 0 or 1 element per step of `j` and every
/// buffer is f32: the loop can run several lanes at once.
fn unit_stride_everywhere(s: &KStmt, j: u32, bufs: &[KBuf]) -> bool {
    let f32_buf = |b: &u32| bufs[*b as usize].dtype == DType::F32;
    let vexpr_ok = |e: &VExpr| vexpr_unit_stride(e, j, &f32_buf);
    match s {
        KStmt::Store { buf, index, value } => f32_buf(buf) && stride(index, j) == Some(1) && vexpr_ok(value),
        _ => false,
    }
}

fn vexpr_unit_stride(e: &VExpr, j: u32, f32_buf: &impl Fn(&u32) -> bool) -> bool {
    let vexpr_ok = |x: &VExpr, j: u32| vexpr_unit_stride(x, j, f32_buf);
    match e {
        VExpr::Load { buf, index } => f32_buf(buf) && matches!(stride(index, j), Some(0 | 1)),
        VExpr::Const(c) => c.dtype() == DType::F32,
        VExpr::Var(_) => true,
        VExpr::Index(_) | VExpr::Cast(..) => false,
        VExpr::Unary(_, x) => vexpr_ok(x, j),
        VExpr::Binary(op, a, b) => !op.is_comparison() && vexpr_ok(a, j) && vexpr_ok(b, j),
        VExpr::Select(..) => false,
    }
}
