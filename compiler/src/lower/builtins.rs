//! Built-in functions: the primitive ops of the Graph IR under friendly names, plus a few
//! conveniences (`mean`, `transpose`, `one_hot`, `stack`) that lower to several primitives.

use mlc_dsl::{Diagnostic, Span};
use mlc_ir::{ArgOp, BinaryOp, DType, Dim, Op, ReduceOp, UnaryOp, numel};

use super::{ArgVal, Env, Lowerer, R, TVal, Val};

/// Every built-in name (functions, constants and dtypes), for lookups and hints.
pub const NAMES: &[&str] = &[
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "recip",
    "tanh",
    "sigmoid",
    "erf",
    "sin",
    "cos",
    "floor",
    "ceil",
    "round",
    "sign",
    "not",
    "maximum",
    "minimum",
    "pow",
    "where",
    "cast",
    "sum",
    "prod",
    "max",
    "min",
    "any",
    "all",
    "mean",
    "argmax",
    "argmin",
    "reshape",
    "permute",
    "transpose",
    "expand",
    "squeeze",
    "unsqueeze",
    "flatten",
    "concat",
    "stack",
    "pad",
    "slice",
    "matmul",
    "gather",
    "take",
    "scatter",
    "dynamic_slice",
    "dynamic_update_slice",
    "one_hot",
    "zeros",
    "ones",
    "full",
    "zeros_like",
    "ones_like",
    "full_like",
    "iota",
    "arange",
    "tensor",
    "cumsum",
    "topk",
    "rand",
    "shape",
    "dim",
    "rank",
    "len",
    "dtype",
    "float",
    "int",
    "inf",
    "nan",
    "pi",
    "f32",
    "f16",
    "bf16",
    "i32",
    "i64",
    "bool",
];

/// A built-in constant or function by name.
pub fn constant(name: &str) -> Option<Val> {
    match name {
        "inf" => Some(Val::Float(f64::INFINITY)),
        "nan" => Some(Val::Float(f64::NAN)),
        "pi" => Some(Val::Float(std::f64::consts::PI)),
        _ => {
            if let Some(d) = DType::from_name(name) {
                return Some(Val::DType(d));
            }
            NAMES.iter().find(|n| **n == name).map(|n| Val::Builtin(n))
        }
    }
}

fn unary_op(name: &str) -> Option<UnaryOp> {
    Some(match name {
        "neg" => UnaryOp::Neg,
        "abs" => UnaryOp::Abs,
        "exp" => UnaryOp::Exp,
        "log" => UnaryOp::Log,
        "sqrt" => UnaryOp::Sqrt,
        "rsqrt" => UnaryOp::Rsqrt,
        "recip" => UnaryOp::Recip,
        "tanh" => UnaryOp::Tanh,
        "sigmoid" => UnaryOp::Sigmoid,
        "erf" => UnaryOp::Erf,
        "sin" => UnaryOp::Sin,
        "cos" => UnaryOp::Cos,
        "floor" => UnaryOp::Floor,
        "ceil" => UnaryOp::Ceil,
        "round" => UnaryOp::Round,
        "sign" => UnaryOp::Sign,
        "not" => UnaryOp::Not,
        _ => return None,
    })
}

/// Static evaluation of a unary function on a number.
fn static_unary(op: UnaryOp, x: f64) -> Option<Val> {
    Some(match op {
        UnaryOp::Neg => Val::Float(-x),
        UnaryOp::Abs => Val::Float(x.abs()),
        UnaryOp::Exp => Val::Float(x.exp()),
        UnaryOp::Log => Val::Float(x.ln()),
        UnaryOp::Sqrt => Val::Float(x.sqrt()),
        UnaryOp::Rsqrt => Val::Float(1.0 / x.sqrt()),
        UnaryOp::Recip => Val::Float(1.0 / x),
        UnaryOp::Tanh => Val::Float(x.tanh()),
        UnaryOp::Sigmoid => Val::Float(1.0 / (1.0 + (-x).exp())),
        UnaryOp::Sin => Val::Float(x.sin()),
        UnaryOp::Cos => Val::Float(x.cos()),
        UnaryOp::Floor => Val::Int(x.floor() as i64),
        UnaryOp::Ceil => Val::Int(x.ceil() as i64),
        UnaryOp::Round => Val::Int(x.round_ties_even() as i64),
        UnaryOp::Sign => Val::Float(if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }),
        UnaryOp::Erf | UnaryOp::Not => return None,
    })
}

/// Positional/keyword arguments matched against a built-in's parameter list.
struct Bound {
    vals: Vec<Val>,
    spans: Vec<Span>,
}

impl<'p> Lowerer<'p> {
    /// Matches `args` to `params` (name, default); `None` default means required.
    fn sig(&self, name: &str, args: Vec<ArgVal>, params: &[(&str, Option<Val>)], span: Span) -> R<Bound> {
        let mut vals: Vec<Option<(Val, Span)>> = vec![None; params.len()];
        let mut pos = 0;
        for a in args {
            let i = match &a.name {
                None => {
                    if pos >= params.len() {
                        return Err(
                            Diagnostic::new(a.span, format!("too many arguments for `{name}`")).note(format!(
                                "expected `{name}({})`",
                                params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                            )),
                        );
                    }
                    pos += 1;
                    pos - 1
                }
                Some(n) => params.iter().position(|p| p.0 == n).ok_or_else(|| {
                    Diagnostic::new(a.span, format!("`{name}` has no parameter `{n}`")).note(format!(
                        "expected `{name}({})`",
                        params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                    ))
                })?,
            };
            if vals[i].is_some() {
                return Err(Diagnostic::new(
                    a.span,
                    format!("argument `{}` of `{name}` is given twice", params[i].0),
                ));
            }
            vals[i] = Some((a.val, a.span));
        }
        let mut out = Bound {
            vals: Vec::new(),
            spans: Vec::new(),
        };
        for (p, v) in params.iter().zip(vals) {
            match (v, &p.1) {
                (Some((v, s)), _) => {
                    out.vals.push(v);
                    out.spans.push(s);
                }
                (None, Some(d)) => {
                    out.vals.push(d.clone());
                    out.spans.push(span);
                }
                (None, None) => {
                    return Err(
                        Diagnostic::new(span, format!("missing argument `{}` of `{name}`", p.0)).note(format!(
                            "expected `{name}({})`",
                            params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ")
                        )),
                    );
                }
            }
        }
        Ok(out)
    }

    fn tensor(&mut self, env: &Env, b: &Bound, i: usize) -> R<TVal> {
        self.tensor_of(env, &b.vals[i], None, b.spans[i])
    }

    fn int(&self, b: &Bound, i: usize) -> R<i64> {
        b.vals[i].as_int().ok_or_else(|| {
            Diagnostic::new(
                b.spans[i],
                format!("expected a static integer, found {}", b.vals[i].kind()),
            )
        })
    }

    fn flag(&self, b: &Bound, i: usize) -> R<bool> {
        match b.vals[i] {
            Val::Bool(x) => Ok(x),
            ref v => Err(Diagnostic::new(
                b.spans[i],
                format!("expected true or false, found {}", v.kind()),
            )),
        }
    }

    fn dtype_arg(&self, b: &Bound, i: usize) -> R<Option<DType>> {
        match b.vals[i] {
            Val::DType(d) => Ok(Some(d)),
            Val::None => Ok(None),
            ref v => Err(Diagnostic::new(
                b.spans[i],
                format!("expected a dtype such as f32, found {}", v.kind()),
            )),
        }
    }

    fn axis_of(&self, b: &Bound, i: usize, t: TVal) -> R<usize> {
        let a = self.int(b, i)?;
        self.axis(a, self.ty(t).rank(), b.spans[i])
    }

    /// Axes for a reduction: `None` (all), an int, or a list of ints.
    fn axes_of(&self, b: &Bound, i: usize, t: TVal) -> R<Vec<usize>> {
        let rank = self.ty(t).rank();
        let mut out: Vec<usize> = match &b.vals[i] {
            Val::None => (0..rank).collect(),
            Val::List(xs) | Val::Tuple(xs) => xs
                .iter()
                .map(|x| {
                    let a = x
                        .as_int()
                        .ok_or_else(|| Diagnostic::new(b.spans[i], "expected integer axes"))?;
                    self.axis(a, rank, b.spans[i])
                })
                .collect::<R<_>>()?,
            v => vec![
                self.axis(
                    v.as_int()
                        .ok_or_else(|| Diagnostic::new(b.spans[i], "expected an axis"))?,
                    rank,
                    b.spans[i],
                )?,
            ],
        };
        out.sort();
        Ok(out)
    }

    fn list_of_tensors(&mut self, env: &Env, b: &Bound, i: usize) -> R<Vec<TVal>> {
        match &b.vals[i] {
            Val::List(xs) | Val::Tuple(xs) if !xs.is_empty() => {
                let like = xs.iter().find_map(|x| self.dtype_of(x));
                xs.clone()
                    .iter()
                    .map(|x| self.tensor_of(env, x, like, b.spans[i]))
                    .collect()
            }
            v => Err(Diagnostic::new(
                b.spans[i],
                format!("expected a non-empty list of tensors, found {}", v.kind()),
            )),
        }
    }

    /// Calls the built-in `name`.
    pub(super) fn call_builtin(&mut self, env: &Env, name: &'static str, args: Vec<ArgVal>, span: Span) -> R<Val> {
        let t = |x: TVal| Ok(Val::Tensor(x));
        if let Some(u) = unary_op(name) {
            let b = self.sig(name, args, &[("x", None)], span)?;
            if let Some(x) = match &b.vals[0] {
                Val::Int(i) => Some(*i as f64),
                Val::Float(f) => Some(*f),
                _ => None,
            } && let Some(v) = static_unary(u, x)
            {
                return Ok(v);
            }
            let x = self.tensor(env, &b, 0)?;
            let dt = self.ty(x).dtype;
            if !matches!(u, UnaryOp::Not | UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign) && !dt.is_float() {
                return Err(Diagnostic::new(
                    b.spans[0],
                    format!("`{name}` needs a float tensor, found {}", self.ty(x)),
                )
                .note(format!("expected a float dtype: convert with `{name}(cast(x, f32))`")));
            }
            return t(self.node1(env, Op::Unary(u), &[x], span)?);
        }
        match name {
            "maximum" | "minimum" | "pow" => {
                let b = self.sig(name, args, &[("a", None), ("b", None)], span)?;
                let op = match name {
                    "maximum" => BinaryOp::Max,
                    "minimum" => BinaryOp::Min,
                    _ => BinaryOp::Pow,
                };
                if let (Some(x), Some(y)) = (num(&b.vals[0]), num(&b.vals[1])) {
                    let both_int = matches!((&b.vals[0], &b.vals[1]), (Val::Int(_), Val::Int(_)));
                    let r = match op {
                        BinaryOp::Max => x.max(y),
                        BinaryOp::Min => x.min(y),
                        _ => x.powf(y),
                    };
                    return Ok(if both_int && op != BinaryOp::Pow {
                        Val::Int(r as i64)
                    } else {
                        Val::Float(r)
                    });
                }
                self.binop(env, op, &b.vals[0], &b.vals[1], span)
            }
            "where" => {
                let b = self.sig(name, args, &[("cond", None), ("a", None), ("b", None)], span)?;
                if let Val::Bool(c) = b.vals[0] {
                    return Ok(if c { b.vals[1].clone() } else { b.vals[2].clone() });
                }
                let c = self.tensor_of(env, &b.vals[0], Some(DType::Bool), b.spans[0])?;
                if self.ty(c).dtype != DType::Bool {
                    return Err(Diagnostic::new(
                        b.spans[0],
                        format!("the condition of `where` must be a bool tensor, found {}", self.ty(c)),
                    )
                    .note("expected a comparison such as `where(x > 0.0, x, 0.0)`"));
                }
                let like = self.dtype_of(&b.vals[1]).or(self.dtype_of(&b.vals[2]));
                let x = self.tensor_of(env, &b.vals[1], like, b.spans[1])?;
                let y = self.tensor_of(env, &b.vals[2], like, b.spans[2])?;
                t(self.node1(env, Op::Select, &[c, x, y], span)?)
            }
            "cast" => {
                let b = self.sig(name, args, &[("x", None), ("dtype", None)], span)?;
                let dt = self
                    .dtype_arg(&b, 1)?
                    .ok_or_else(|| Diagnostic::new(b.spans[1], "expected a dtype"))?;
                let x = self.tensor_of(env, &b.vals[0], Some(dt), b.spans[0])?;
                if self.ty(x).dtype == dt {
                    return t(x);
                }
                t(self.node1(env, Op::Cast(dt), &[x], span)?)
            }
            "sum" | "prod" | "max" | "min" | "any" | "all" | "mean" => {
                if matches!(name, "max" | "min")
                    && args.len() == 2
                    && args.iter().all(|a| a.name.is_none() && num(&a.val).is_some())
                {
                    let name2 = if name == "max" { "maximum" } else { "minimum" };
                    return self.call_builtin(env, name2, args, span);
                }
                let b = self.sig(
                    name,
                    args,
                    &[
                        ("x", None),
                        ("axis", Some(Val::None)),
                        ("keepdim", Some(Val::Bool(false))),
                    ],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let axes = self.axes_of(&b, 1, x)?;
                let keepdim = self.flag(&b, 2)?;
                let op = match name {
                    "sum" | "mean" => ReduceOp::Sum,
                    "prod" => ReduceOp::Prod,
                    "max" => ReduceOp::Max,
                    "min" => ReduceOp::Min,
                    "any" => ReduceOp::Any,
                    _ => ReduceOp::All,
                };
                let count: Dim = axes.iter().fold(Dim::c(1), |acc, a| &acc * &self.ty(x).shape[*a]);
                let r = self.node1(env, Op::Reduce { op, axes, keepdim }, &[x], span)?;
                if name == "mean" {
                    return self.binop(env, BinaryOp::Div, &Val::Tensor(r), &Val::from_dim(count), span);
                }
                t(r)
            }
            "argmax" | "argmin" => {
                let b = self.sig(
                    name,
                    args,
                    &[
                        ("x", None),
                        ("axis", Some(Val::Int(-1))),
                        ("keepdim", Some(Val::Bool(false))),
                    ],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let axis = self.axis_of(&b, 1, x)?;
                let op = if name == "argmax" { ArgOp::ArgMax } else { ArgOp::ArgMin };
                t(self.node1(
                    env,
                    Op::ArgReduce {
                        op,
                        axis,
                        keepdim: self.flag(&b, 2)?,
                    },
                    &[x],
                    span,
                )?)
            }
            "reshape" => {
                let b = self.sig(name, args, &[("x", None), ("shape", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                let shape = self.reshape_target(x, &b.vals[1], b.spans[1])?;
                t(self.node1(env, Op::Reshape(shape), &[x], span)?)
            }
            "permute" => {
                let b = self.sig(name, args, &[("x", None), ("axes", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                let rank = self.ty(x).rank();
                let perm = match &b.vals[1] {
                    Val::List(xs) | Val::Tuple(xs) => xs
                        .iter()
                        .map(|v| {
                            self.axis(
                                v.as_int()
                                    .ok_or_else(|| Diagnostic::new(b.spans[1], "expected integer axes"))?,
                                rank,
                                b.spans[1],
                            )
                        })
                        .collect::<R<Vec<_>>>()?,
                    v => {
                        return Err(Diagnostic::new(
                            b.spans[1],
                            format!("expected a list of axes, found {}", v.kind()),
                        ));
                    }
                };
                t(self.node1(env, Op::Permute(perm), &[x], span)?)
            }
            "transpose" => {
                let b = self.sig(
                    name,
                    args,
                    &[("x", None), ("a", Some(Val::Int(-2))), ("b", Some(Val::Int(-1)))],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let (i, j) = (self.axis_of(&b, 1, x)?, self.axis_of(&b, 2, x)?);
                let mut perm: Vec<usize> = (0..self.ty(x).rank()).collect();
                perm.swap(i, j);
                t(self.node1(env, Op::Permute(perm), &[x], span)?)
            }
            "expand" => {
                let b = self.sig(name, args, &[("x", None), ("shape", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                let shape = self.shape_arg(&b.vals[1], b.spans[1])?;
                t(self.node1(env, Op::Expand(shape), &[x], span)?)
            }
            "squeeze" | "unsqueeze" => {
                let b = self.sig(name, args, &[("x", None), ("axis", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                let rank = self.ty(x).rank();
                if name == "squeeze" {
                    let a = self.axis_of(&b, 1, x)?;
                    t(self.remove_axis(env, x, a, span)?)
                } else {
                    let a = self.axis(self.int(&b, 1)?, rank + 1, b.spans[1])?;
                    t(self.insert_axis(env, x, a, span)?)
                }
            }
            "flatten" => {
                let b = self.sig(
                    name,
                    args,
                    &[("x", None), ("start", Some(Val::Int(0))), ("end", Some(Val::Int(-1)))],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let (s, e) = (self.axis_of(&b, 1, x)?, self.axis_of(&b, 2, x)?);
                let old = self.ty(x).shape.clone();
                let mut shape = old[..s].to_vec();
                shape.push(numel(&old[s..=e.max(s)]));
                shape.extend(old[e.max(s) + 1..].iter().cloned());
                t(self.node1(env, Op::Reshape(shape), &[x], span)?)
            }
            "concat" | "stack" => {
                let b = self.sig(name, args, &[("xs", None), ("axis", Some(Val::Int(0)))], span)?;
                let mut xs = self.list_of_tensors(env, &b, 0)?;
                let rank = self.ty(xs[0]).rank() + usize::from(name == "stack");
                let axis = self.axis(self.int(&b, 1)?, rank, b.spans[1])?;
                if name == "stack" {
                    xs = xs
                        .into_iter()
                        .map(|x| self.insert_axis(env, x, axis, span))
                        .collect::<R<_>>()?;
                }
                t(self.node1(env, Op::Concat { axis }, &xs, span)?)
            }
            "pad" => {
                let b = self.sig(
                    name,
                    args,
                    &[
                        ("x", None),
                        ("axis", None),
                        ("before", None),
                        ("after", None),
                        ("value", Some(Val::Float(0.0))),
                    ],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let axis = self.axis_of(&b, 1, x)?;
                let (before, after) = (self.int(&b, 2)?, self.int(&b, 3)?);
                if before < 0 || after < 0 {
                    return Err(Diagnostic::new(span, "pad amounts must be non-negative"));
                }
                let value = match b.vals[4] {
                    Val::Int(i) => i as f64,
                    Val::Float(f) => f,
                    Val::Bool(v) => f64::from(u8::from(v)),
                    ref v => {
                        return Err(Diagnostic::new(
                            b.spans[4],
                            format!("expected a number, found {}", v.kind()),
                        ));
                    }
                };
                t(self.node1(
                    env,
                    Op::Pad {
                        axis,
                        before: before as u64,
                        after: after as u64,
                        value,
                    },
                    &[x],
                    span,
                )?)
            }
            "slice" => {
                let b = self.sig(
                    name,
                    args,
                    &[
                        ("x", None),
                        ("axis", None),
                        ("start", None),
                        ("end", None),
                        ("step", Some(Val::Int(1))),
                    ],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let axis = self.axis_of(&b, 1, x)?;
                let n = self.ty(x).shape[axis].clone();
                let fix = |v: &Val, s: Span| -> R<Dim> {
                    let d = v.as_dim().ok_or_else(|| {
                        Diagnostic::new(s, format!("expected an integer or a dim, found {}", v.kind()))
                    })?;
                    Ok(match (d.as_const(), n.as_const()) {
                        (Some(c), Some(m)) => Dim::c(if c < 0 { c + m } else { c }.clamp(0, m)),
                        (Some(c), None) if c < 0 => &n + &d,
                        _ => d,
                    })
                };
                let (start, end) = (fix(&b.vals[2], b.spans[2])?, fix(&b.vals[3], b.spans[3])?);
                let step = self.int(&b, 4)?;
                if step <= 0 {
                    return Err(Diagnostic::new(b.spans[4], "a slice step must be positive"));
                }
                t(self.node1(
                    env,
                    Op::Slice {
                        axis,
                        start,
                        end,
                        step: step as u64,
                    },
                    &[x],
                    span,
                )?)
            }
            "matmul" => {
                let b = self.sig(name, args, &[("a", None), ("b", None)], span)?;
                let (x, y) = (self.tensor(env, &b, 0)?, self.tensor(env, &b, 1)?);
                t(self.matmul(env, x, y, span)?)
            }
            "gather" | "take" => {
                let default_axis = if name == "take" { Some(Val::Int(0)) } else { None };
                let b = self.sig(
                    name,
                    args,
                    &[("x", None), ("index", None), ("axis", default_axis)],
                    span,
                )?;
                let (x, i) = (self.tensor(env, &b, 0)?, self.tensor(env, &b, 1)?);
                let axis = self.axis_of(&b, 2, x)?;
                let op = if name == "take" {
                    Op::Take { axis }
                } else {
                    Op::Gather { axis }
                };
                t(self.node1(env, op, &[x, i], span)?)
            }
            "scatter" => {
                let b = self.sig(
                    name,
                    args,
                    &[("x", None), ("index", None), ("src", None), ("axis", None)],
                    span,
                )?;
                let (x, i) = (self.tensor(env, &b, 0)?, self.tensor(env, &b, 1)?);
                let axis = self.axis_of(&b, 3, x)?;
                let dt = self.ty(x).dtype;
                let mut src = self.tensor_of(env, &b.vals[2], Some(dt), b.spans[2])?;
                let ishape = self.ty(i).shape.clone();
                if self.ty(src).shape != ishape {
                    src = self.node1(env, Op::Expand(ishape), &[src], b.spans[2])?;
                }
                t(self.node1(env, Op::Scatter { axis }, &[x, i, src], span)?)
            }
            "dynamic_slice" => {
                let b = self.sig(
                    name,
                    args,
                    &[("x", None), ("start", None), ("size", None), ("axis", None)],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let s = self.tensor_of(env, &b.vals[1], Some(DType::I64), b.spans[1])?;
                let size = b.vals[2]
                    .as_dim()
                    .ok_or_else(|| Diagnostic::new(b.spans[2], "expected a static size"))?;
                let axis = self.axis_of(&b, 3, x)?;
                t(self.node1(env, Op::DynamicSlice { axis, size }, &[x, s], span)?)
            }
            "dynamic_update_slice" => {
                let b = self.sig(
                    name,
                    args,
                    &[("x", None), ("update", None), ("start", None), ("axis", None)],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let dt = self.ty(x).dtype;
                let u = self.tensor_of(env, &b.vals[1], Some(dt), b.spans[1])?;
                let s = self.tensor_of(env, &b.vals[2], Some(DType::I64), b.spans[2])?;
                let axis = self.axis_of(&b, 3, x)?;
                t(self.node1(env, Op::DynamicUpdateSlice { axis }, &[x, u, s], span)?)
            }
            "one_hot" => {
                let b = self.sig(
                    name,
                    args,
                    &[("index", None), ("n", None), ("dtype", Some(Val::DType(DType::F32)))],
                    span,
                )?;
                let i = self.tensor(env, &b, 0)?;
                let n = b.vals[1]
                    .as_dim()
                    .ok_or_else(|| Diagnostic::new(b.spans[1], "expected a static count"))?;
                let dt = self.dtype_arg(&b, 2)?.unwrap_or(DType::F32);
                let mut shape = self.ty(i).shape.clone();
                shape.push(n);
                let idt = self.ty(i).dtype;
                let rank = shape.len();
                let ramp = self.node1(
                    env,
                    Op::Iota {
                        shape: shape.clone(),
                        axis: rank - 1,
                        dtype: idt,
                    },
                    &[],
                    span,
                )?;
                let ix = self.insert_axis(env, i, rank - 1, span)?;
                let eq = self.node1(env, Op::Binary(BinaryOp::Eq), &[ramp, ix], span)?;
                if dt == DType::Bool {
                    return t(eq);
                }
                t(self.node1(env, Op::Cast(dt), &[eq], span)?)
            }
            "zeros" | "ones" | "full" => {
                let params: &[(&str, Option<Val>)] = if name == "full" {
                    &[("shape", None), ("value", None), ("dtype", Some(Val::None))]
                } else {
                    &[("shape", None), ("dtype", Some(Val::DType(DType::F32)))]
                };
                let b = self.sig(name, args, params, span)?;
                let shape = self.shape_arg(&b.vals[0], b.spans[0])?;
                let (value, dt) = match name {
                    "zeros" => (Val::Int(0), self.dtype_arg(&b, 1)?),
                    "ones" => (Val::Int(1), self.dtype_arg(&b, 1)?),
                    _ => (b.vals[1].clone(), self.dtype_arg(&b, 2)?),
                };
                let value = match (dt, value) {
                    (Some(DType::Bool), Val::Int(i)) => Val::Bool(i != 0),
                    (_, v) => v,
                };
                let s = self.tensor_of(env, &value, dt, span)?;
                t(self.node1(env, Op::Expand(shape), &[s], span)?)
            }
            "zeros_like" | "ones_like" | "full_like" => {
                let params: &[(&str, Option<Val>)] = if name == "full_like" {
                    &[("x", None), ("value", None)]
                } else {
                    &[("x", None)]
                };
                let b = self.sig(name, args, params, span)?;
                let x = self.tensor(env, &b, 0)?;
                let ty = self.ty(x).clone();
                let value = match name {
                    "zeros_like" => Val::Int(0),
                    "ones_like" => Val::Int(1),
                    _ => b.vals[1].clone(),
                };
                let value = match (ty.dtype, value) {
                    (DType::Bool, Val::Int(i)) => Val::Bool(i != 0),
                    (_, v) => v,
                };
                let s = self.tensor_of(env, &value, Some(ty.dtype), span)?;
                t(self.node1(env, Op::Expand(ty.shape), &[s], span)?)
            }
            "iota" => {
                let b = self.sig(
                    name,
                    args,
                    &[("shape", None), ("axis", None), ("dtype", Some(Val::DType(DType::I64)))],
                    span,
                )?;
                let shape = self.shape_arg(&b.vals[0], b.spans[0])?;
                let axis = self.axis(self.int(&b, 1)?, shape.len(), b.spans[1])?;
                let dtype = self.dtype_arg(&b, 2)?.unwrap_or(DType::I64);
                t(self.node1(env, Op::Iota { shape, axis, dtype }, &[], span)?)
            }
            "arange" => {
                let b = self.sig(
                    name,
                    args,
                    &[("n", None), ("dtype", Some(Val::DType(DType::I64)))],
                    span,
                )?;
                let n = b.vals[0]
                    .as_dim()
                    .ok_or_else(|| Diagnostic::new(b.spans[0], "expected a static length"))?;
                let dtype = self.dtype_arg(&b, 1)?.unwrap_or(DType::I64);
                t(self.node1(
                    env,
                    Op::Iota {
                        shape: vec![n],
                        axis: 0,
                        dtype,
                    },
                    &[],
                    span,
                )?)
            }
            "tensor" => {
                let b = self.sig(name, args, &[("values", None), ("dtype", Some(Val::None))], span)?;
                let dt = self.dtype_arg(&b, 1)?;
                t(self.literal(env, &b.vals[0], dt, b.spans[0])?)
            }
            "cumsum" => {
                let b = self.sig(
                    name,
                    args,
                    &[
                        ("x", None),
                        ("axis", None),
                        ("exclusive", Some(Val::Bool(false))),
                        ("reverse", Some(Val::Bool(false))),
                    ],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let axis = self.axis_of(&b, 1, x)?;
                let (exclusive, reverse) = (self.flag(&b, 2)?, self.flag(&b, 3)?);
                t(self.node1(
                    env,
                    Op::Cumsum {
                        axis,
                        exclusive,
                        reverse,
                    },
                    &[x],
                    span,
                )?)
            }
            "topk" => {
                let b = self.sig(
                    name,
                    args,
                    &[
                        ("x", None),
                        ("k", None),
                        ("axis", Some(Val::Int(-1))),
                        ("largest", Some(Val::Bool(true))),
                    ],
                    span,
                )?;
                let x = self.tensor(env, &b, 0)?;
                let k = b.vals[1]
                    .as_dim()
                    .ok_or_else(|| Diagnostic::new(b.spans[1], "expected a static k"))?;
                let axis = self.axis_of(&b, 2, x)?;
                let largest = self.flag(&b, 3)?;
                let r = self.node(env, Op::TopK { k, axis, largest }, &[x], span)?;
                Ok(Val::Tuple(vec![Val::Tensor(r[0]), Val::Tensor(r[1])]))
            }
            "rand" => {
                let b = self.sig(
                    name,
                    args,
                    &[("seed", None), ("shape", None), ("offset", Some(Val::Int(0)))],
                    span,
                )?;
                let seed = self.tensor_of(env, &b.vals[0], Some(DType::I64), b.spans[0])?;
                let shape = self.shape_arg(&b.vals[1], b.spans[1])?;
                let offset = self.tensor_of(env, &b.vals[2], Some(DType::I64), b.spans[2])?;
                t(self.node1(env, Op::RngUniform { shape }, &[seed, offset], span)?)
            }
            "shape" => {
                let b = self.sig(name, args, &[("x", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                Ok(Val::List(self.ty(x).shape.iter().cloned().map(Val::from_dim).collect()))
            }
            "dim" => {
                let b = self.sig(name, args, &[("x", None), ("axis", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                let a = self.axis_of(&b, 1, x)?;
                Ok(Val::from_dim(self.ty(x).shape[a].clone()))
            }
            "rank" => {
                let b = self.sig(name, args, &[("x", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                Ok(Val::Int(self.ty(x).rank() as i64))
            }
            "dtype" => {
                let b = self.sig(name, args, &[("x", None)], span)?;
                let x = self.tensor(env, &b, 0)?;
                Ok(Val::DType(self.ty(x).dtype))
            }
            "len" => {
                let b = self.sig(name, args, &[("x", None)], span)?;
                match &b.vals[0] {
                    Val::List(xs) | Val::Tuple(xs) => Ok(Val::Int(xs.len() as i64)),
                    Val::Stack { insts } => Ok(Val::Int(insts.len() as i64)),
                    Val::Tensor(x) => Ok(Val::from_dim(self.ty(*x).shape.first().cloned().unwrap_or(Dim::c(1)))),
                    v => Err(Diagnostic::new(b.spans[0], format!("{} has no length", v.kind()))),
                }
            }
            "float" | "int" => {
                let b = self.sig(name, args, &[("x", None)], span)?;
                match (name, &b.vals[0]) {
                    ("float", v) if num(v).is_some() => Ok(Val::Float(num(v).expect("checked"))),
                    ("int", Val::Float(f)) => Ok(Val::Int(f.trunc() as i64)),
                    ("int", Val::Int(i)) => Ok(Val::Int(*i)),
                    (_, v) => Err(Diagnostic::new(
                        b.spans[0],
                        format!("`{name}` converts static numbers, found {}", v.kind()),
                    )
                    .note("expected a number; for tensors use `cast(x, f32)`")),
                }
            }
            _ => Err(Diagnostic::new(span, format!("`{name}` is not a function"))),
        }
    }

    /// A binary op on two values with the dtype of whichever is a tensor.
    fn binop(&mut self, env: &Env, op: BinaryOp, a: &Val, b: &Val, span: Span) -> R<Val> {
        let like = self.dtype_of(a).or(self.dtype_of(b));
        let x = self.tensor_of(env, a, like, span)?;
        let y = self.tensor_of(env, b, like, span)?;
        Ok(Val::Tensor(self.node1(env, Op::Binary(op), &[x, y], span)?))
    }

    /// A reshape target with at most one `-1`, which takes the remaining elements.
    fn reshape_target(&self, x: TVal, v: &Val, span: Span) -> R<Vec<Dim>> {
        let items = match v {
            Val::List(xs) | Val::Tuple(xs) => xs.clone(),
            other => {
                return Err(Diagnostic::new(
                    span,
                    format!("expected a shape, found {}", other.kind()),
                ));
            }
        };
        let holes = items.iter().filter(|i| matches!(i, Val::Int(-1))).count();
        if holes > 1 {
            return Err(Diagnostic::new(span, "at most one -1 in a shape"));
        }
        let known: Vec<Val> = items.iter().filter(|i| !matches!(i, Val::Int(-1))).cloned().collect();
        let known = self.shape_arg(&Val::List(known), span)?;
        if holes == 0 {
            return Ok(known);
        }
        let total = numel(&self.ty(x).shape);
        let rest = numel(&known);
        let fill = match rest.as_const() {
            Some(c) if c > 0 => total.div_exact(c),
            _ if rest == total => Some(Dim::c(1)),
            _ => {
                // Symbolic divisor: try dividing out each known symbolic factor in turn.
                let mut t = total.clone();
                let mut ok = true;
                for d in &known {
                    if let Some(c) = d.as_const() {
                        match t.div_exact(c) {
                            Some(q) => t = q,
                            None => ok = false,
                        }
                    } else if let Some(q) = div_symbol(&t, d) {
                        t = q;
                    } else {
                        ok = false;
                    }
                }
                ok.then_some(t)
            }
        };
        let fill = fill.ok_or_else(|| {
            Diagnostic::new(
                span,
                format!(
                    "cannot infer -1 when reshaping {} to {:?}",
                    self.ty(x),
                    items.iter().map(|i| i.kind()).collect::<Vec<_>>()
                ),
            )
        })?;
        Ok(items
            .iter()
            .map(|i| {
                if matches!(i, Val::Int(-1)) {
                    fill.clone()
                } else {
                    i.as_dim().expect("checked")
                }
            })
            .collect())
    }
}

/// `t / d` for a single-symbol `d`, when `t` is a multiple of it.
fn div_symbol(t: &Dim, d: &Dim) -> Option<Dim> {
    let syms = d.symbols();
    if syms.len() != 1 || *d != Dim::sym(&syms[0]) {
        return None;
    }
    // t = q * d  <=>  check by substituting: try q = t with one occurrence of the symbol removed.
    let text = t.to_string();
    let parts: Vec<&str> = text.split(" + ").collect();
    let mut q = Dim::c(0);
    for p in parts {
        let mut factors: Vec<&str> = p.split('*').collect();
        let pos = factors.iter().position(|f| *f == syms[0])?;
        factors.remove(pos);
        let term = if factors.is_empty() {
            "1".to_string()
        } else {
            factors.join("*")
        };
        q = &q + &Dim::parse(&term).ok()?;
    }
    (&q * d == *t).then_some(q)
}

/// A static number as f64.
fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}
