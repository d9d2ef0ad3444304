//! Expressions: static arithmetic, tensor operators with broadcasting, indexing.

use mlc_dsl::ast::{BinOp, Expr, ExprKind, IndexItem, UnOp};
use mlc_dsl::{Diagnostic, Span};
use mlc_ir::{BinaryOp, DType, Dim, Literal, Op, UnaryOp};

use super::{Env, Lowerer, R, Scalar, TVal, Val};

impl<'p> Lowerer<'p> {
    /// Evaluates an expression that must not create graph nodes (hyperparameters, shapes).
    pub(super) fn eval_static(&mut self, env: &Env, e: &Expr) -> R<Val> {
        let v = self.eval(env, e)?;
        if matches!(v, Val::Tensor(_)) {
            return Err(Diagnostic::new(
                e.span,
                "expected a value known at compile time, found a tensor",
            ));
        }
        Ok(v)
    }

    /// Evaluates an expression.
    pub(super) fn eval(&mut self, env: &Env, e: &Expr) -> R<Val> {
        match &e.kind {
            ExprKind::Int(i) => Ok(Val::Int(*i)),
            ExprKind::Float(f) => Ok(Val::Float(*f)),
            ExprKind::Bool(b) => Ok(Val::Bool(*b)),
            ExprKind::NoneLit => Ok(Val::None),
            ExprKind::Name(n) => self.lookup(env, n, e.span),
            ExprKind::List(items) => Ok(Val::List(items.iter().map(|x| self.eval(env, x)).collect::<R<_>>()?)),
            ExprKind::Tuple(items) => Ok(Val::Tuple(items.iter().map(|x| self.eval(env, x)).collect::<R<_>>()?)),
            ExprKind::Unary(op, x) => {
                let v = self.eval(env, x)?;
                self.unary(env, *op, v, e.span)
            }
            ExprKind::Binary(op, a, b) => {
                let va = self.eval(env, a)?;
                let vb = self.eval(env, b)?;
                self.binary(env, *op, va, vb, e.span)
            }
            ExprKind::Call { callee, args } => {
                let f = self.eval(env, callee)?;
                let args = self.eval_args(env, args)?;
                self.call_value(env, f, args, e.span)
            }
            ExprKind::Field(obj, field) => {
                let o = self.eval(env, obj)?;
                self.field(o, &field.name, field.span)
            }
            ExprKind::Index(x, items) => {
                let v = self.eval(env, x)?;
                self.index(env, v, items, e.span)
            }
            ExprKind::If { cond, then, otherwise } => match self.eval(env, cond)? {
                Val::Bool(true) => self.eval(env, then),
                Val::Bool(false) => self.eval(env, otherwise),
                other => Err(Diagnostic::new(
                    cond.span,
                    format!("an `if` condition must be a static bool, found {}", other.kind()),
                )
                .note("expected a condition on hyperparameters; for tensors use `where(cond, a, b)`")),
            },
        }
    }

    /// Turns a value into a tensor; static scalars take the dtype `like` (or their own kind).
    pub(super) fn tensor_of(&mut self, env: &Env, v: &Val, like: Option<DType>, span: Span) -> R<TVal> {
        match v {
            Val::Tensor(t) => Ok(*t),
            Val::Int(i) => {
                let dt = like.filter(|d| *d != DType::Bool).unwrap_or(DType::I64);
                self.constant(env, dt, Scalar::Int(*i), span)
            }
            Val::Float(f) => match like {
                Some(d) if d.is_float() => self.constant(env, d, Scalar::Float(*f), span),
                None => self.constant(env, DType::F32, Scalar::Float(*f), span),
                Some(d) => Err(
                    Diagnostic::new(span, format!("cannot use the float {f:?} with a tensor of dtype {d}")).note(
                        format!("expected a value of dtype {d}, or a float tensor: `cast(x, f32)`"),
                    ),
                ),
            },
            Val::Bool(b) => self.constant(env, DType::Bool, Scalar::Bool(*b), span),
            Val::Dim(d) => {
                let t = self.node1(env, Op::DimSize(d.clone()), &[], span)?;
                match like {
                    Some(dt) if dt != DType::I64 && dt != DType::Bool => self.node1(env, Op::Cast(dt), &[t], span),
                    _ => Ok(t),
                }
            }
            other => Err(Diagnostic::new(
                span,
                format!("expected a tensor, found {}", other.kind()),
            )),
        }
    }

    /// The dtype of a value if it is a tensor.
    pub(super) fn dtype_of(&self, v: &Val) -> Option<DType> {
        match v {
            Val::Tensor(t) => Some(self.ty(*t).dtype),
            _ => None,
        }
    }

    fn unary(&mut self, env: &Env, op: UnOp, v: Val, span: Span) -> R<Val> {
        match (op, &v) {
            (UnOp::Neg, Val::Int(i)) => i.checked_neg().map(Val::Int).ok_or_else(|| overflow(span)),
            (UnOp::Neg, Val::Float(f)) => Ok(Val::Float(-f)),
            (UnOp::Neg, Val::Dim(d)) => Ok(Val::from_dim(d * &Dim::c(-1))),
            (UnOp::Not, Val::Bool(b)) => Ok(Val::Bool(!b)),
            (_, Val::Tensor(t)) => {
                let u = if op == UnOp::Neg { UnaryOp::Neg } else { UnaryOp::Not };
                Ok(Val::Tensor(self.node1(env, Op::Unary(u), &[*t], span)?))
            }
            _ => Err(Diagnostic::new(
                span,
                format!(
                    "cannot apply `{}` to {}",
                    if op == UnOp::Neg { "-" } else { "!" },
                    v.kind()
                ),
            )),
        }
    }

    /// Applies a binary operator: statically when both sides are static, else as graph ops.
    pub(super) fn binary(&mut self, env: &Env, op: BinOp, a: Val, b: Val, span: Span) -> R<Val> {
        if !matches!(a, Val::Tensor(_)) && !matches!(b, Val::Tensor(_)) {
            return static_binary(op, &a, &b, span);
        }
        if op == BinOp::MatMul {
            let ta = self.tensor_of(env, &a, None, span)?;
            let tb = self.tensor_of(env, &b, None, span)?;
            return Ok(Val::Tensor(self.matmul(env, ta, tb, span)?));
        }
        if matches!(a, Val::None) || matches!(b, Val::None) {
            return match op {
                BinOp::Eq => Ok(Val::Bool(false)),
                BinOp::Ne => Ok(Val::Bool(true)),
                _ => Err(Diagnostic::new(span, "cannot compute with None")),
            };
        }
        let like = self.dtype_of(&a).or(self.dtype_of(&b));
        let ta = self.tensor_of(env, &a, like, span)?;
        let tb = self.tensor_of(env, &b, like, span)?;
        let bop = match op {
            BinOp::Add => BinaryOp::Add,
            BinOp::Sub => BinaryOp::Sub,
            BinOp::Mul => BinaryOp::Mul,
            BinOp::Div => BinaryOp::Div,
            BinOp::Rem => BinaryOp::Rem,
            BinOp::Pow => BinaryOp::Pow,
            BinOp::Eq => BinaryOp::Eq,
            BinOp::Ne => BinaryOp::Ne,
            BinOp::Lt => BinaryOp::Lt,
            BinOp::Le => BinaryOp::Le,
            BinOp::Gt => BinaryOp::Gt,
            BinOp::Ge => BinaryOp::Ge,
            BinOp::And => BinaryOp::And,
            BinOp::Or => BinaryOp::Or,
            BinOp::MatMul => unreachable!("handled above"),
        };
        Ok(Val::Tensor(self.node1(env, Op::Binary(bop), &[ta, tb], span)?))
    }

    /// `a @ b`, with rank-1 operands treated as a row (left) or a column (right) and squeezed.
    pub(super) fn matmul(&mut self, env: &Env, a: TVal, b: TVal, span: Span) -> R<TVal> {
        let (ra, rb) = (self.ty(a).rank(), self.ty(b).rank());
        if ra == 0 || rb == 0 {
            return Err(Diagnostic::new(
                span,
                format!("`@` needs tensors of rank >= 1, got {} @ {}", self.ty(a), self.ty(b)),
            ));
        }
        let a2 = if ra == 1 { self.insert_axis(env, a, 0, span)? } else { a };
        let b2 = if rb == 1 { self.insert_axis(env, b, 1, span)? } else { b };
        let mut out = self.node1(env, Op::MatMul, &[a2, b2], span)?;
        if rb == 1 {
            let r = self.ty(out).rank();
            out = self.remove_axis(env, out, r - 1, span)?;
        }
        if ra == 1 {
            let r = self.ty(out).rank();
            out = self.remove_axis(env, out, r - 2, span)?;
        }
        Ok(out)
    }

    /// Inserts an axis of size 1 at `axis`.
    pub(super) fn insert_axis(&mut self, env: &Env, t: TVal, axis: usize, span: Span) -> R<TVal> {
        let mut shape = self.ty(t).shape.clone();
        shape.insert(axis, Dim::c(1));
        self.node1(env, Op::Reshape(shape), &[t], span)
    }

    /// Removes an axis, which must have size 1.
    pub(super) fn remove_axis(&mut self, env: &Env, t: TVal, axis: usize, span: Span) -> R<TVal> {
        let mut shape = self.ty(t).shape.clone();
        if shape[axis] != Dim::c(1) {
            return Err(Diagnostic::new(
                span,
                format!("cannot drop axis {axis} of {}: its size is not 1", self.ty(t)),
            ));
        }
        shape.remove(axis);
        self.node1(env, Op::Reshape(shape), &[t], span)
    }

    /// Normalises a possibly negative axis against a rank.
    pub(super) fn axis(&self, axis: i64, rank: usize, span: Span) -> R<usize> {
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= rank as i64 {
            return Err(Diagnostic::new(
                span,
                format!("axis {axis} is out of range for a tensor of rank {rank}"),
            ));
        }
        Ok(a as usize)
    }

    fn field(&mut self, obj: Val, name: &str, span: Span) -> R<Val> {
        match obj {
            Val::Inst(i) => self.member(i, name, span)?.ok_or_else(|| {
                let def = self.block_def(self.insts[i].block);
                let inst = &self.insts[i];
                let mut names: Vec<String> = inst
                    .params
                    .keys()
                    .chain(inst.subs.keys())
                    .chain(inst.env.keys())
                    .cloned()
                    .collect();
                names.extend(def.members.iter().filter_map(|m| match m {
                    mlc_dsl::ast::Member::Fn(f) => Some(f.name.name.clone()),
                    _ => None,
                }));
                names.sort();
                names.dedup();
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                Diagnostic::new(span, format!("block `{}` has no member `{name}`", def.name.name))
                    .note(format!("expected one of: {}", names.join(", ")))
            }),
            other => Err(Diagnostic::new(span, format!("{} has no field `{name}`", other.kind()))),
        }
    }

    /// `x[items]` on tensors, lists, tuples and stacks.
    fn index(&mut self, env: &Env, v: Val, items: &[IndexItem], span: Span) -> R<Val> {
        match v {
            Val::Tensor(t) => Ok(Val::Tensor(self.index_tensor(env, t, items, span)?)),
            Val::List(xs) | Val::Tuple(xs) => {
                let (start, end, single) = self.static_range(env, items, xs.len(), span)?;
                if single {
                    Ok(xs[start].clone())
                } else {
                    Ok(Val::List(xs[start..end].to_vec()))
                }
            }
            Val::Stack { insts } => {
                let (start, end, single) = self.static_range(env, items, insts.len(), span)?;
                if single {
                    Ok(Val::Inst(insts[start]))
                } else {
                    Ok(Val::Stack {
                        insts: insts[start..end].to_vec(),
                    })
                }
            }
            other => Err(Diagnostic::new(span, format!("cannot index {}", other.kind()))),
        }
    }

    /// One static index or slice (step 1) into a sequence of length `n`: (start, end, single).
    fn static_range(&mut self, env: &Env, items: &[IndexItem], n: usize, span: Span) -> R<(usize, usize, bool)> {
        let int = |l: &mut Self, e: &Expr| -> R<i64> {
            match l.eval_static(env, e)? {
                Val::Int(i) => Ok(if i < 0 { i + n as i64 } else { i }),
                other => Err(Diagnostic::new(
                    e.span,
                    format!("expected a static integer index, found {}", other.kind()),
                )),
            }
        };
        match items {
            [IndexItem::Expr(e)] => {
                let i = int(self, e)?;
                if i < 0 || i >= n as i64 {
                    return Err(Diagnostic::new(
                        e.span,
                        format!("index {i} is out of range for length {n}"),
                    ));
                }
                Ok((i as usize, i as usize + 1, true))
            }
            [
                IndexItem::Slice {
                    start, end, step: None, ..
                },
            ] => {
                let s = match start {
                    Some(e) => int(self, e)?,
                    None => 0,
                }
                .clamp(0, n as i64) as usize;
                let e = match end {
                    Some(e) => int(self, e)?,
                    None => n as i64,
                }
                .clamp(0, n as i64) as usize;
                Ok((s, e.max(s), false))
            }
            _ => Err(Diagnostic::new(
                span,
                "expected one index `[i]` or one slice `[a:b]` here",
            )),
        }
    }

    fn index_tensor(&mut self, env: &Env, t: TVal, items: &[IndexItem], span: Span) -> R<TVal> {
        let rank = self.ty(t).rank();
        let consumed = items
            .iter()
            .filter(|i| !matches!(i, IndexItem::NewAxis(_) | IndexItem::Ellipsis(_)))
            .count();
        if items.iter().filter(|i| matches!(i, IndexItem::Ellipsis(_))).count() > 1 {
            return Err(Diagnostic::new(span, "at most one `...` in an index"));
        }
        if consumed > rank {
            return Err(Diagnostic::new(
                span,
                format!(
                    "too many indices: {consumed} for a tensor of rank {rank} ({})",
                    self.ty(t)
                ),
            )
            .note(format!(
                "expected at most {rank} indices (`None` and `...` do not count)"
            )));
        }
        let mut cur = t;
        let mut axis = 0usize;
        for item in items {
            match item {
                IndexItem::Ellipsis(_) => axis += rank - consumed,
                IndexItem::NewAxis(s) => {
                    cur = self.insert_axis(env, cur, axis, *s)?;
                    axis += 1;
                }
                IndexItem::Slice {
                    start,
                    end,
                    step,
                    span: s,
                } => {
                    let n = self.ty(cur).shape[axis].clone();
                    let step = match step {
                        None => 1,
                        Some(e) => match self.eval_static(env, e)? {
                            Val::Int(k) if k > 0 => k as u64,
                            other => {
                                return Err(Diagnostic::new(
                                    e.span,
                                    format!("a slice step must be a positive static integer, found {}", other.kind()),
                                ));
                            }
                        },
                    };
                    let lo = match start {
                        None => Dim::c(0),
                        Some(e) => self.bound(env, e, &n)?,
                    };
                    let hi = match end {
                        None => n.clone(),
                        Some(e) => self.bound(env, e, &n)?,
                    };
                    if !(lo == Dim::c(0) && hi == n && step == 1) {
                        cur = self.node1(
                            env,
                            Op::Slice {
                                axis,
                                start: lo,
                                end: hi,
                                step,
                            },
                            &[cur],
                            *s,
                        )?;
                    }
                    axis += 1;
                }
                IndexItem::Expr(e) => match self.eval(env, e)? {
                    Val::Tensor(idx) => {
                        let r = self.ty(idx).rank();
                        cur = self.node1(env, Op::Take { axis }, &[cur, idx], e.span)?;
                        axis += r;
                    }
                    v => {
                        let n = self.ty(cur).shape[axis].clone();
                        let i = self.bound(env, e, &n).map_err(|_| {
                            Diagnostic::new(
                                e.span,
                                format!("expected an index (integer, dim or tensor), found {}", v.kind()),
                            )
                        })?;
                        let next = &i + &Dim::c(1);
                        cur = self.node1(
                            env,
                            Op::Slice {
                                axis,
                                start: i,
                                end: next,
                                step: 1,
                            },
                            &[cur],
                            e.span,
                        )?;
                        cur = self.remove_axis(env, cur, axis, e.span)?;
                    }
                },
            }
        }
        Ok(cur)
    }

    /// A slice bound: a static int or dim; negative constants count from the end `n`; constants
    /// are clamped to `0..=n` when `n` is constant.
    fn bound(&mut self, env: &Env, e: &Expr, n: &Dim) -> R<Dim> {
        let v = self.eval_static(env, e)?;
        let d = v
            .as_dim()
            .ok_or_else(|| Diagnostic::new(e.span, format!("expected an integer or a dim, found {}", v.kind())))?;
        let d = match d.as_const() {
            Some(c) if c < 0 => n + &d,
            _ => d,
        };
        Ok(match (d.as_const(), n.as_const()) {
            (Some(c), Some(m)) => Dim::c(c.clamp(0, m)),
            _ => d,
        })
    }

    /// A static list of ints/dims as a shape.
    pub(super) fn shape_arg(&self, v: &Val, span: Span) -> R<Vec<Dim>> {
        let items = match v {
            Val::List(xs) | Val::Tuple(xs) => xs,
            other => {
                return Err(Diagnostic::new(
                    span,
                    format!("expected a shape like `[B, 4]`, found {}", other.kind()),
                ));
            }
        };
        items
            .iter()
            .map(|x| {
                x.as_dim()
                    .filter(|d| d.as_const().is_none_or(|c| c >= 0))
                    .ok_or_else(|| {
                        Diagnostic::new(
                            span,
                            format!(
                                "a shape entry must be a non-negative integer or a dim, found {}",
                                x.kind()
                            ),
                        )
                    })
            })
            .collect()
    }

    /// A literal tensor from a (nested) static list.
    pub(super) fn literal(&mut self, env: &Env, v: &Val, dtype: Option<DType>, span: Span) -> R<TVal> {
        fn flatten(v: &Val, shape: &mut Vec<u64>, depth: usize, out: &mut Vec<Val>, span: Span) -> R<()> {
            match v {
                Val::List(xs) | Val::Tuple(xs) => {
                    if shape.len() == depth {
                        shape.push(xs.len() as u64);
                    } else if shape[depth] != xs.len() as u64 {
                        return Err(Diagnostic::new(span, "a tensor literal must be rectangular"));
                    }
                    xs.iter().try_for_each(|x| flatten(x, shape, depth + 1, out, span))
                }
                x => {
                    out.push(x.clone());
                    Ok(())
                }
            }
        }
        let (mut shape, mut flat) = (Vec::new(), Vec::new());
        flatten(v, &mut shape, 0, &mut flat, span)?;
        let all_int = flat.iter().all(|x| matches!(x, Val::Int(_)));
        let dtype = dtype.unwrap_or(if flat.iter().all(|x| matches!(x, Val::Bool(_))) && !flat.is_empty() {
            DType::Bool
        } else if all_int {
            DType::I64
        } else {
            DType::F32
        });
        let bad = |x: &Val| Diagnostic::new(span, format!("a {dtype} tensor literal cannot hold {}", x.kind()));
        let data = if dtype.is_float() {
            let vals = flat.iter().map(|x| match x {
                Val::Int(i) => Ok(*i as f64),
                Val::Float(f) => Ok(if dtype == DType::F32 { *f as f32 as f64 } else { *f }),
                x => Err(bad(x)),
            });
            mlc_ir::LiteralData::Float(vals.collect::<R<_>>()?)
        } else if dtype == DType::Bool {
            mlc_ir::LiteralData::Bool(
                flat.iter()
                    .map(|x| if let Val::Bool(b) = x { Ok(*b) } else { Err(bad(x)) })
                    .collect::<R<_>>()?,
            )
        } else {
            mlc_ir::LiteralData::Int(
                flat.iter()
                    .map(|x| if let Val::Int(i) = x { Ok(*i) } else { Err(bad(x)) })
                    .collect::<R<_>>()?,
            )
        };
        self.node1(env, Op::Const(Literal { dtype, shape, data }), &[], span)
    }
}

/// Arithmetic and comparison on static values.
fn static_binary(op: BinOp, a: &Val, b: &Val, span: Span) -> R<Val> {
    use BinOp::*;
    let bad = || {
        Diagnostic::new(
            span,
            format!("cannot apply `{}` to {} and {}", op.symbol(), a.kind(), b.kind()),
        )
    };
    match (a, b) {
        (Val::List(x) | Val::Tuple(x), Val::List(y) | Val::Tuple(y)) if op == Add => {
            Ok(Val::List(x.iter().chain(y).cloned().collect()))
        }
        (Val::Int(x), Val::Int(y)) => {
            let (x, y) = (*x, *y);
            let checked = |r: Option<i64>| r.map(Val::Int).ok_or_else(|| overflow(span));
            Ok(match op {
                Add => checked(x.checked_add(y))?,
                Sub => checked(x.checked_sub(y))?,
                Mul => checked(x.checked_mul(y))?,
                Div | Rem if y == 0 => return Err(Diagnostic::new(span, "division by zero")),
                Div => checked(floor_div(x, y))?,
                Rem => {
                    // The result has the sign of `y` (Python's `%`).
                    let r = x.wrapping_rem(y);
                    Val::Int(if r != 0 && ((r < 0) != (y < 0)) { r + y } else { r })
                }
                Pow if y >= 0 => checked(u32::try_from(y).ok().and_then(|e| x.checked_pow(e)))?,
                Pow => Val::Float((x as f64).powf(y as f64)),
                Eq | Ne | Lt | Le | Gt | Ge => Val::Bool(compare(op, x, y)),
                And | Or | MatMul => return Err(bad()),
            })
        }
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => {
            let f = |v: &Val| match v {
                Val::Int(i) => *i as f64,
                Val::Float(f) => *f,
                _ => unreachable!(),
            };
            let (x, y) = (f(a), f(b));
            Ok(match op {
                Add => Val::Float(x + y),
                Sub => Val::Float(x - y),
                Mul => Val::Float(x * y),
                Div => Val::Float(x / y),
                Rem => Val::Float(x - y * (x / y).floor()),
                Pow => Val::Float(x.powf(y)),
                Eq | Ne | Lt | Le | Gt | Ge => Val::Bool(compare(op, x, y)),
                And | Or | MatMul => return Err(bad()),
            })
        }
        (Val::Bool(x), Val::Bool(y)) => Ok(match op {
            And => Val::Bool(*x && *y),
            Or => Val::Bool(*x || *y),
            Eq => Val::Bool(x == y),
            Ne => Val::Bool(x != y),
            _ => return Err(bad()),
        }),
        (Val::None, _) | (_, Val::None) => match op {
            Eq => Ok(Val::Bool(matches!(a, Val::None) && matches!(b, Val::None))),
            Ne => Ok(Val::Bool(!(matches!(a, Val::None) && matches!(b, Val::None)))),
            _ => Err(bad()),
        },
        (Val::DType(x), Val::DType(y)) => match op {
            Eq => Ok(Val::Bool(x == y)),
            Ne => Ok(Val::Bool(x != y)),
            _ => Err(bad()),
        },
        _ => {
            let (Some(x), Some(y)) = (a.as_dim(), b.as_dim()) else {
                return Err(bad());
            };
            match op {
                Add => Ok(Val::from_dim(&x + &y)),
                Sub => Ok(Val::from_dim(&x - &y)),
                Mul => Ok(Val::from_dim(&x * &y)),
                Div => match y.as_const().and_then(|c| x.div_exact(c)) {
                    Some(d) => Ok(Val::from_dim(d)),
                    None => Err(Diagnostic::new(
                        span,
                        format!("cannot divide the dimension {x} by {y} exactly"),
                    )),
                },
                Eq | Ne if x == y => Ok(Val::Bool(op == Eq)),
                Eq | Ne | Lt | Le | Gt | Ge => match (x.as_const(), y.as_const()) {
                    (Some(p), Some(q)) => static_binary(op, &Val::Int(p), &Val::Int(q), span),
                    _ => Err(Diagnostic::new(
                        span,
                        format!("cannot compare the dimensions {x} and {y} at compile time"),
                    )),
                },
                _ => Err(bad()),
            }
        }
    }
}

/// Floor division (rounds toward negative infinity), `None` on overflow.
fn floor_div(x: i64, y: i64) -> Option<i64> {
    let q = x.checked_div(y)?;
    Some(if x % y != 0 && ((x < 0) != (y < 0)) { q - 1 } else { q })
}

/// A static integer computation that does not fit in 64 bits.
fn overflow(span: Span) -> Diagnostic {
    Diagnostic::new(span, "integer overflow in a value computed at compile time").note(format!(
        "expected a result between {} and {}",
        i64::MIN,
        i64::MAX
    ))
}

/// A comparison operator applied to two static numbers.
fn compare<T: PartialOrd>(op: BinOp, x: T, y: T) -> bool {
    match op {
        BinOp::Eq => x == y,
        BinOp::Ne => x != y,
        BinOp::Lt => x < y,
        BinOp::Le => x <= y,
        BinOp::Gt => x > y,
        BinOp::Ge => x >= y,
        _ => unreachable!("not a comparison"),
    }
}
