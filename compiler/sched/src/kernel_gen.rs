//! Building Kernel IR: a value's expression tree at a multi-index, with movement ops turned into
//! index arithmetic and buffered values turned into loads.

use std::collections::HashMap;
use std::ops::{Add, Div, Mul, Rem};

use mlc_ir::plan::BufId;
use mlc_ir::{
    Access, ArgOp, BinaryOp, DType, Dim, Graph, IExpr, KBuf, KStmt, KernelFn, LiteralData, Op, ReduceOp, Scalar, VExpr,
    Value,
};

use crate::SchedError;

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
}

type R<T> = Result<T, SchedError>;

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
        }
    }

    fn err(&self, message: String) -> SchedError {
        SchedError {
            function: self.function.to_string(),
            message,
        }
    }

    pub fn var(&mut self) -> u32 {
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
    pub fn dim(&mut self, d: &Dim) -> IExpr {
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
    pub fn linearize(&mut self, idx: &[IExpr], shape: &[Dim]) -> IExpr {
        let mut off = IExpr::Const(0);
        for (i, d) in idx.iter().zip(shape) {
            let n = self.dim(d);
            off = Add::add(Mul::mul(off, n), i.clone());
        }
        off
    }

    /// The multi-index of a row-major offset.
    fn delinearize(&mut self, off: IExpr, shape: &[Dim]) -> Vec<IExpr> {
        let mut idx = vec![IExpr::Const(0); shape.len()];
        let mut rest = off;
        for k in (0..shape.len()).rev() {
            let n = self.dim(&shape[k]);
            if k == 0 {
                idx[0] = rest.clone();
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
    pub fn expr(&mut self, v: Value, idx: &[IExpr]) -> R<VExpr> {
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
                let src = match unit_axes_map(&in_shape, &out_shape) {
                    // Only axes of size 1 come or go: indices carry over directly.
                    Some(map) => map
                        .iter()
                        .map(|m| m.map_or(IExpr::Const(0), |k| idx[k].clone()))
                        .collect(),
                    None => {
                        let off = self.linearize(idx, &out_shape);
                        self.delinearize(off, &in_shape)
                    }
                };
                self.expr(ops[0], &src)?
            }
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

    /// The multi-index of an output element and the loops around it: the leading axes are
    /// flattened into the parallel index `p`, the last axis is an inner loop.
    fn output_nest(&mut self, shape: &[Dim]) -> (u32, IExpr, Option<(u32, IExpr)>, Vec<IExpr>) {
        let p = self.var();
        let r = shape.len();
        if r == 0 {
            return (p, IExpr::Const(1), None, vec![]);
        }
        let outer_extent = shape[..r - 1].iter().fold(IExpr::Const(1), |acc, d| {
            let n = self.dim(d);
            Mul::mul(acc, n)
        });
        let mut idx = self.delinearize(IExpr::Var(p), &shape[..r - 1]);
        let j = self.var();
        let inner = self.dim(&shape[r - 1]);
        idx.push(IExpr::Var(j));
        (p, outer_extent, Some((j, inner)), idx)
    }

    /// A kernel writing every element of `v` (an elementwise or movement expression) to `out`.
    pub fn elementwise(mut self, name: String, v: Value, out: BufId) -> R<(KernelFn, Vec<BufId>, Vec<String>)> {
        let shape = self.g.ty(v).shape.clone();
        let (p, extent, inner, idx) = self.output_nest(&shape);
        self.root = Some(v);
        let value = self.expr(v, &idx)?;
        let ob = self.buf(out, Access::Write);
        let body = match inner {
            None => vec![KStmt::Store {
                buf: ob,
                index: IExpr::Const(0),
                value,
            }],
            Some((j, n)) => {
                let index = Add::add(Mul::mul(IExpr::Var(p), n.clone()), IExpr::Var(j));
                let store = KStmt::Store { buf: ob, index, value };
                let vectorize = unit_stride_everywhere(&store, j, &self.bufs);
                vec![KStmt::Loop {
                    var: j,
                    extent: n,
                    vectorize,
                    body: vec![store],
                }]
            }
        };
        let k = KernelFn {
            name,
            bufs: self.bufs,
            dims: self.dims.clone(),
            parallel: (p, extent),
            body,
        };
        Ok((k, self.args, self.dims))
    }

    /// A kernel writing the index of the largest (or smallest) element of `x` along `axis` to
    /// `out`, with the interpreter's rules: the first extreme wins ties, and the first NaN wins
    /// over everything.
    pub fn arg_reduce(
        mut self,
        name: String,
        op: ArgOp,
        x: Value,
        axis: usize,
        out: BufId,
    ) -> R<(KernelFn, Vec<BufId>, Vec<String>)> {
        let in_shape = self.g.ty(x).shape.clone();
        let dtype = self.g.ty(x).dtype;
        let kept: Vec<usize> = (0..in_shape.len()).filter(|a| *a != axis).collect();
        let kept_shape: Vec<Dim> = kept.iter().map(|&a| in_shape[a].clone()).collect();
        let p = self.var();
        let extent = kept_shape.iter().fold(IExpr::Const(1), |acc, d| {
            let n = self.dim(d);
            Mul::mul(acc, n)
        });
        let kept_idx = self.delinearize(IExpr::Var(p), &kept_shape);
        let j = self.var();
        let mut idx = vec![IExpr::Var(j); in_shape.len()];
        for (k, &a) in kept.iter().enumerate() {
            idx[a] = kept_idx[k].clone();
        }
        let (best, arg, v, better) = (self.var(), self.var(), self.var(), self.var());
        let value = self.expr(x, &idx)?;
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
        let var = VExpr::Var;
        // `v` wins when it beats the best so far, or when it is the first NaN.
        let mut wins = bin(cmp, var(v), var(best));
        if dtype == DType::F32 {
            let v_nan = bin(BinaryOp::Ne, var(v), var(v));
            let best_is_number = bin(BinaryOp::Eq, var(best), var(best));
            wins = bin(BinaryOp::Or, wins, bin(BinaryOp::And, v_nan, best_is_number));
        }
        // The extreme of an empty or all-`worst` row is index 0, as in the interpreter: the first
        // element always replaces the initial value.
        let first = bin(BinaryOp::Eq, VExpr::Index(IExpr::Var(j)), VExpr::Const(Scalar::I64(0)));
        wins = bin(BinaryOp::Or, wins, first);
        let n = self.dim(&in_shape[axis]);
        let select = |c: VExpr, a: VExpr, b: VExpr| VExpr::Select(Box::new(c), Box::new(a), Box::new(b));
        let body = vec![
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
        let ob = self.buf(out, Access::Write);
        let stmts = vec![
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
            KStmt::Loop {
                var: j,
                extent: n,
                vectorize: false,
                body,
            },
            KStmt::Store {
                buf: ob,
                index: IExpr::Var(p),
                value: var(arg),
            },
        ];
        let k = KernelFn {
            name,
            bufs: self.bufs,
            dims: self.dims.clone(),
            parallel: (p, extent),
            body: stmts,
        };
        Ok((k, self.args, self.dims))
    }

    /// A kernel reducing `x` over `axes` into `out` (one accumulator per output element).
    pub fn reduce(
        mut self,
        name: String,
        op: ReduceOp,
        x: Value,
        axes: &[usize],
        out: BufId,
    ) -> R<(KernelFn, Vec<BufId>, Vec<String>)> {
        let in_shape = self.g.ty(x).shape.clone();
        let dtype = self.g.ty(x).dtype;
        let kept: Vec<usize> = (0..in_shape.len()).filter(|a| !axes.contains(a)).collect();
        let kept_shape: Vec<Dim> = kept.iter().map(|&a| in_shape[a].clone()).collect();
        let p = self.var();
        let extent = kept_shape.iter().fold(IExpr::Const(1), |acc, d| {
            let n = self.dim(d);
            Mul::mul(acc, n)
        });
        let kept_idx = self.delinearize(IExpr::Var(p), &kept_shape);
        let mut idx = vec![IExpr::Const(0); in_shape.len()];
        for (k, &a) in kept.iter().enumerate() {
            idx[a] = kept_idx[k].clone();
        }
        let loop_vars: Vec<u32> = axes.iter().map(|_| self.var()).collect();
        for (&a, &v) in axes.iter().zip(&loop_vars) {
            idx[a] = IExpr::Var(v);
        }
        let acc = self.var();
        let value = self.expr(x, &idx)?;
        let (init, combine) =
            reduce_parts(op, dtype).ok_or_else(|| self.err(format!("no kernel for {op:?} over {dtype}")))?;
        let mut body = vec![KStmt::Assign {
            var: acc,
            value: VExpr::Binary(combine, Box::new(VExpr::Var(acc)), Box::new(value)),
        }];
        for (&a, &v) in axes.iter().zip(&loop_vars).rev() {
            let n = self.dim(&in_shape[a]);
            body = vec![KStmt::Loop {
                var: v,
                extent: n,
                vectorize: false,
                body,
            }];
        }
        let ob = self.buf(out, Access::Write);
        let mut stmts = vec![KStmt::Acc {
            var: acc,
            dtype,
            init: VExpr::Const(init),
        }];
        stmts.extend(body);
        stmts.push(KStmt::Store {
            buf: ob,
            index: IExpr::Var(p),
            value: VExpr::Var(acc),
        });
        let k = KernelFn {
            name,
            bufs: self.bufs,
            dims: self.dims.clone(),
            parallel: (p, extent),
            body: stmts,
        };
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

/// When a reshape only inserts or removes axes of size 1, the source axis of each input axis:
/// `Some(k)` for output axis `k`, `None` for an input axis of size 1 with no counterpart.
fn unit_axes_map(input: &[Dim], output: &[Dim]) -> Option<Vec<Option<usize>>> {
    let one = Dim::c(1);
    let big_in: Vec<usize> = (0..input.len()).filter(|&i| input[i] != one).collect();
    let big_out: Vec<usize> = (0..output.len()).filter(|&i| output[i] != one).collect();
    if big_in.len() != big_out.len() || big_in.iter().zip(&big_out).any(|(&a, &b)| input[a] != output[b]) {
        return None;
    }
    let mut map = vec![None; input.len()];
    for (&a, &b) in big_in.iter().zip(&big_out) {
        map[a] = Some(b);
    }
    Some(map)
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
