//! Statements, calls (inlined), name lookup, loops and entry points.

use std::collections::HashMap;

use mlc_dsl::ast::{self, Body, Expr, ExprKind, FnDef, FnParam, Item, LoopStmt, Member, Pattern, Stmt, TypeExpr};
use mlc_dsl::{Diagnostic, FileId, Span};
use mlc_ir::{DType, Dim, Function, Graph, LoopOp, Op, TensorType, Value, shape_to_string};

use super::{ArgVal, Env, Frame, InstId, LoopCtx, Lowerer, MAX_CALL_DEPTH, R, TVal, Val, builtins};

/// What a `return` produced: named values.
type Returned = Vec<(Option<String>, Val, Span)>;

impl Frame {
    fn new() -> Frame {
        Frame {
            graph: Graph::new(),
            captures: Vec::new(),
            capture_map: HashMap::new(),
            params: HashMap::new(),
        }
    }
}

impl<'p> Lowerer<'p> {
    // ---- names ---------------------------------------------------------------------------

    /// Resolves a name: locals, then the members of the running block, then items in the
    /// file's scope, then built-ins.
    pub(super) fn lookup(&mut self, env: &Env, name: &str, span: Span) -> R<Val> {
        if let Some(v) = self.try_lookup(env, name, span)? {
            return Ok(v);
        }
        let mut candidates: Vec<String> = env.vars.keys().cloned().collect();
        if let Some(i) = env.inst {
            let inst = &self.insts[i];
            candidates.extend(
                inst.params
                    .keys()
                    .chain(inst.subs.keys())
                    .chain(inst.env.keys())
                    .cloned(),
            );
        }
        if let Some(scope) = self.prog.scopes.get(&env.file) {
            candidates.extend(scope.keys().cloned());
        }
        candidates.extend(builtins::NAMES.iter().map(|s| s.to_string()));
        // Typos: at most one edit per three characters (so `z` does not suggest every short name).
        let limit = (name.chars().count() / 3).max(1);
        let mut close: Vec<String> = candidates
            .into_iter()
            .filter(|c| c != name && edit_distance(c, name) <= limit && c.len() + name.len() > 2)
            .collect();
        close.sort();
        close.dedup();
        let mut d = Diagnostic::new(span, format!("unknown name `{name}`"));
        if let Some(loop_span) = self.loop_locals.get(name) {
            d = d.note(format!(
                "`{name}` is bound inside the loop at {}; only carried and emitted values are visible after a loop (`carry ({name} = ...)` or `emit {name} = ...`)",
                self.loc(*loop_span)
            ));
        }
        if !close.is_empty() {
            d = d.note(format!(
                "did you mean {}?",
                close.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(m) = std_module_defining(name) {
            d = d.note(format!(
                "`{name}` is defined in the standard library: add `import std.{m}`"
            ));
        }
        Err(d)
    }

    fn try_lookup(&mut self, env: &Env, name: &str, span: Span) -> R<Option<Val>> {
        if let Some(v) = env.vars.get(name) {
            return Ok(Some(v.clone()));
        }
        if let Some(i) = env.inst
            && let Some(v) = self.member(i, name, span)?
        {
            return Ok(Some(v));
        }
        if let Some(r) = self.prog.scopes.get(&env.file).and_then(|s| s.get(name)).copied() {
            return match self.item(r) {
                Item::Fn(_) => Ok(Some(Val::Func(r))),
                _ => Err(
                    Diagnostic::new(span, format!("block `{name}` is used like a value")).note(format!(
                        "expected an instance: declare it as a member, `x = {name}(...)`, and use `x`"
                    )),
                ),
            };
        }
        Ok(builtins::constant(name))
    }

    /// A member of an instance: parameter (as a graph node), sub-block, hyperparameter or method.
    pub(super) fn member(&mut self, inst: InstId, name: &str, span: Span) -> R<Option<Val>> {
        let i = &self.insts[inst];
        if let Some(p) = i.params.get(name) {
            let Some(p) = p.clone() else { return Ok(Some(Val::None)) };
            if self.frames.is_empty() {
                return Err(Diagnostic::new(
                    span,
                    format!("parameter `{name}` cannot be used at compile time"),
                ));
            }
            let ty = TensorType::new(p.dtype, p.shape.iter().map(|&d| Dim::c(d as i64)).collect());
            let env = Env {
                vars: HashMap::new(),
                inst: None,
                file: i.block.file,
                binding: String::new(),
                in_loop: None,
            };
            return Ok(Some(Val::Tensor(self.param_node(&env, &p.name, ty, span))));
        }
        if let Some(v) = i.subs.get(name).or_else(|| i.env.get(name)) {
            return Ok(Some(v.clone()));
        }
        let def = self.block_def(i.block);
        if def
            .members
            .iter()
            .any(|m| matches!(m, Member::Fn(f) if f.name.name == name))
        {
            return Ok(Some(Val::Method {
                inst,
                name: name.to_string(),
            }));
        }
        Ok(None)
    }

    // ---- calls ---------------------------------------------------------------------------

    pub(super) fn eval_args(&mut self, env: &Env, args: &[ast::Arg]) -> R<Vec<ArgVal>> {
        args.iter()
            .map(|a| {
                Ok(ArgVal {
                    name: a.name.as_ref().map(|n| n.name.clone()),
                    val: self.eval(env, &a.value)?,
                    span: a.value.span,
                })
            })
            .collect()
    }

    /// Matches arguments to declared parameters (positional, then by name, then defaults
    /// evaluated in `env`, which receives each bound parameter in turn).
    pub(super) fn bind_args(
        &mut self,
        params: &[FnParam],
        args: Vec<ArgVal>,
        env: &mut Env,
        span: Span,
        what: &str,
    ) -> R<Vec<ArgVal>> {
        let mut slots: Vec<Option<ArgVal>> = vec![None; params.len()];
        let mut positional = 0;
        for a in args {
            let i =
                match &a.name {
                    None => {
                        if positional >= params.len() {
                            return Err(Diagnostic::new(a.span, format!("too many arguments for {what}"))
                                .note(format!("expected at most {}: {}", params.len(), param_list(params))));
                        }
                        positional += 1;
                        positional - 1
                    }
                    Some(n) => params.iter().position(|p| p.name.name == *n).ok_or_else(|| {
                        let names: Vec<String> = params.iter().map(|p| format!("`{}`", p.name.name)).collect();
                        Diagnostic::new(a.span, format!("{what} has no parameter `{n}`"))
                            .note(format!("expected one of: {}", names.join(", ")))
                    })?,
                };
            if slots[i].is_some() {
                return Err(Diagnostic::new(
                    a.span,
                    format!("parameter `{}` of {what} is given twice", params[i].name.name),
                ));
            }
            slots[i] = Some(a);
        }
        let mut out = Vec::with_capacity(params.len());
        for (p, slot) in params.iter().zip(slots) {
            let a = match (slot, &p.default) {
                (Some(a), _) => a,
                (None, Some(d)) => ArgVal {
                    name: None,
                    val: self.eval(env, d)?,
                    span: d.span,
                },
                (None, None) => {
                    return Err(
                        Diagnostic::new(span, format!("missing argument `{}` of {what}", p.name.name))
                            .note(format!("expected arguments: {}", param_list(params))),
                    );
                }
            };
            let a = self.check_arg_type(env, p, a, what)?;
            env.vars.insert(p.name.name.clone(), a.val.clone());
            out.push(a);
        }
        Ok(out)
    }

    /// Checks an argument against a declared parameter type. Unknown names in a tensor type's
    /// dims (`x: f32[B, T, d]`) bind to the argument's dims and become visible in the body.
    fn check_arg_type(&mut self, env: &mut Env, p: &FnParam, a: ArgVal, what: &str) -> R<ArgVal> {
        let Some(ty) = &p.ty else { return Ok(a) };
        let name = &p.name.name;
        // `what` is empty when checking a declared result: then `name` says it all.
        let subject = if what.is_empty() {
            name.clone()
        } else {
            format!("argument `{name}` of {what}")
        };
        let mismatch = |expected: &str, a: &ArgVal| {
            Diagnostic::new(a.span, format!("{subject} is {}", a.val.kind())).note(format!("expected {expected}"))
        };
        match ty {
            TypeExpr::Int(_) => match a.val.as_int() {
                Some(i) => Ok(ArgVal { val: Val::Int(i), ..a }),
                None => Err(mismatch("an int", &a)),
            },
            TypeExpr::Float(_) => match a.val {
                Val::Int(i) => Ok(ArgVal {
                    val: Val::Float(i as f64),
                    ..a
                }),
                Val::Float(_) => Ok(a),
                _ => Err(mismatch("a float", &a)),
            },
            TypeExpr::Bool(_) => match a.val {
                Val::Bool(_) => Ok(a),
                _ => Err(mismatch("a bool", &a)),
            },
            TypeExpr::Tensor { dtype, dims, .. } => {
                let dt = parse_dtype(dtype)?;
                let t = match &a.val {
                    Val::Tensor(t) => *t,
                    Val::Int(_) | Val::Float(_) | Val::Bool(_) | Val::Dim(_) => {
                        self.tensor_of(env, &a.val, Some(dt), a.span)?
                    }
                    _ => return Err(mismatch(&format!("a {dt} tensor"), &a)),
                };
                let actual = self.ty(t).clone();
                let expected_str = || {
                    format!(
                        "{}[{}]",
                        dt,
                        dims.as_ref().map_or("...".into(), |d| d
                            .iter()
                            .map(|x| self.prog.sources.snippet(x.span).to_string())
                            .collect::<Vec<_>>()
                            .join(", "))
                    )
                };
                let wrong = |why: String| format!("{subject} has type {actual}, {why}");
                if actual.dtype != dt {
                    return Err(Diagnostic::new(a.span, wrong(format!("but it is declared {dt}")))
                        .note(format!("expected {}", expected_str())));
                }
                if let Some(dims) = dims {
                    if dims.len() != actual.rank() {
                        return Err(Diagnostic::new(
                            a.span,
                            wrong(format!("but it is declared with rank {}", dims.len())),
                        )
                        .note(format!("expected {}", expected_str())));
                    }
                    for (d, got) in dims.iter().zip(&actual.shape) {
                        let want = match &d.kind {
                            ExprKind::Name(n) if self.try_lookup(env, n, d.span)?.is_none() => {
                                env.vars.insert(n.clone(), Val::from_dim(got.clone()));
                                continue;
                            }
                            _ => self.eval_static(env, d)?,
                        };
                        if want.as_dim().as_ref() != Some(got) {
                            let declared = self.prog.sources.snippet(d.span).to_string();
                            return Err(Diagnostic::new(
                                a.span,
                                wrong(format!(
                                    "but its declared dimension `{declared}` is {}",
                                    want.as_dim().map_or(want.kind(), |w| w.to_string())
                                )),
                            )
                            .note(format!("expected {}", expected_str())));
                        }
                    }
                }
                Ok(ArgVal {
                    val: Val::Tensor(t),
                    ..a
                })
            }
        }
    }

    /// Calls a callable value.
    pub(super) fn call_value(&mut self, env: &Env, f: Val, args: Vec<ArgVal>, span: Span) -> R<Val> {
        match f {
            Val::Inst(i) => self.call_method(i, "forward", args, span),
            Val::Method { inst, name } => self.call_method(inst, &name, args, span),
            Val::Stack { insts } => {
                let mut args = args;
                if args.is_empty() || args[0].name.is_some() {
                    return Err(Diagnostic::new(
                        span,
                        "calling a stack of layers needs the input as its first argument",
                    ));
                }
                for i in insts {
                    let out = self.call_method(i, "forward", args.clone(), span)?;
                    if matches!(out, Val::Tuple(_)) {
                        return Err(Diagnostic::new(
                            span,
                            "calling a stack chains `forward`, which must return one value here",
                        )
                        .note("expected a single result; use a `for` loop over the layers to thread several values"));
                    }
                    args[0].val = out;
                }
                Ok(args.swap_remove(0).val)
            }
            Val::Func(r) => {
                let Item::Fn(def) = self.item(r) else {
                    unreachable!("Func refers to a fn")
                };
                self.call_fn(def, r.file, None, args, span)
            }
            Val::Builtin(name) => self.call_builtin(env, name, args, span),
            other => Err(Diagnostic::new(span, format!("{} is not callable", other.kind()))
                .note("expected a function, a built-in, a block instance, a stack of layers or a method")),
        }
    }

    fn call_method(&mut self, inst: InstId, name: &str, args: Vec<ArgVal>, span: Span) -> R<Val> {
        let block = self.insts[inst].block;
        let def = self.block_def(block);
        let f = def.members.iter().find_map(|m| match m {
            Member::Fn(f) if f.name.name == name => Some(f),
            _ => None,
        });
        match f {
            Some(f) => self.call_fn(f, block.file, Some(inst), args, span),
            None => Err(Diagnostic::new(
                span,
                format!("block `{}` has no method `{name}`", def.name.name),
            )),
        }
    }

    /// Inlines a function or method body.
    fn call_fn(&mut self, def: &'p FnDef, file: FileId, inst: Option<InstId>, args: Vec<ArgVal>, span: Span) -> R<Val> {
        if self.depth >= MAX_CALL_DEPTH {
            return Err(Diagnostic::new(
                span,
                format!("calls nest deeper than {MAX_CALL_DEPTH} levels in `{}`", def.name.name),
            )
            .note("expected no unbounded recursion: functions are inlined at compile time"));
        }
        let path = inst.map(|i| self.insts[i].path.clone()).unwrap_or_default();
        let binding = if path.is_empty() {
            def.name.name.clone()
        } else {
            format!("{path}.{}", def.name.name)
        };
        let mut env = Env {
            vars: HashMap::new(),
            inst,
            file,
            binding,
            in_loop: None,
        };
        self.bind_args(&def.params, args, &mut env, span, &format!("`{}`", def.name.name))?;
        self.depth += 1;
        let ret = self.exec_body(&mut env, &def.body);
        self.depth -= 1;
        // An error inside the inlined body: say which call led there (innermost first, a few levels).
        let ret = ret.map_err(|mut d| {
            let frames = d.notes.iter().filter(|n| n.starts_with("in `")).count();
            if frames < 4 && d.span.start != span.start {
                d.notes
                    .push(format!("in `{}`, called at {}", def.name.name, self.loc(span)));
            }
            d
        });
        let vals = match ret? {
            None => {
                return Err(
                    Diagnostic::new(def.name.span, format!("`{}` ends without `return`", def.name.name)).note(format!(
                        "expected a `return` as the last statement (called at {})",
                        self.loc(span)
                    )),
                );
            }
            Some(vals) => vals,
        };
        let vals = match &def.ret {
            Some(types) => self.check_results(&mut env, def, types, vals, span)?,
            None => vals.into_iter().map(|(_, v, _)| v).collect(),
        };
        Ok(if vals.len() == 1 {
            vals.into_iter().next().expect("one value")
        } else {
            Val::Tuple(vals)
        })
    }

    /// Checks a function's results against its declared result types (`-> f32[B, d]`), with the
    /// same rules as typed parameters.
    fn check_results(
        &mut self,
        env: &mut Env,
        def: &FnDef,
        types: &[TypeExpr],
        vals: Returned,
        span: Span,
    ) -> R<Vec<Val>> {
        if types.len() != vals.len() {
            return Err(Diagnostic::new(
                def.name.span,
                format!(
                    "`{}` returns {} value(s) but declares {}",
                    def.name.name,
                    vals.len(),
                    types.len()
                ),
            )
            .note(format!("called at {}", self.loc(span))));
        }
        let mut out = Vec::with_capacity(vals.len());
        for (i, (ty, (_, val, vspan))) in types.iter().zip(vals).enumerate() {
            let name = format!("result {i} of `{}`", def.name.name);
            let p = FnParam {
                name: ast::Ident { name, span: ty.span() },
                ty: Some(ty.clone()),
                default: None,
            };
            let checked = self.check_arg_type(
                env,
                &p,
                ArgVal {
                    name: None,
                    val,
                    span: vspan,
                },
                "",
            )?;
            out.push(checked.val);
        }
        Ok(out)
    }

    // ---- statements ----------------------------------------------------------------------

    /// Runs statements; `Some` once a `return` runs (which must be the last statement).
    fn exec_body(&mut self, env: &mut Env, body: &Body) -> R<Option<Returned>> {
        for (i, s) in body.stmts.iter().enumerate() {
            if let Some(r) = self.exec_stmt(env, s)? {
                // After a static `if` that returned, later statements may still run for other
                // hyperparameters; after a plain `return` they never can.
                if let (Stmt::Return { .. }, Some(next)) = (s, body.stmts.get(i + 1)) {
                    return Err(Diagnostic::new(stmt_span(next), "unreachable statement after `return`"));
                }
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn exec_stmt(&mut self, env: &mut Env, s: &Stmt) -> R<Option<Returned>> {
        match s {
            Stmt::Let { pat, value, .. } => {
                env.binding = pattern_name(pat);
                let v = self.eval(env, value)?;
                self.bind_pattern(env, pat, v, value.span)?;
                Ok(None)
            }
            Stmt::For {
                var, start, end, body, ..
            } => {
                let (a, b) = (self.eval_static(env, start)?, self.eval_static(env, end)?);
                let (Some(a), Some(b)) = (a.as_int(), b.as_int()) else {
                    return Err(
                        Diagnostic::new(start.span.to(end.span), "a `for` range must be static integers")
                            .note("expected hyperparameters or literals; for a run-time count use `loop`"),
                    );
                };
                if i128::from(b) - i128::from(a) > 1_000_000 {
                    return Err(Diagnostic::new(start.span.to(end.span), format!("a `for` loop of {} iterations is too long to unroll", i128::from(b) - i128::from(a)))
                        .note("expected at most 1000000 iterations: `for` is unrolled at compile time; use `loop` for long runs"));
                }
                for i in a..b {
                    env.vars.insert(var.name.clone(), Val::Int(i));
                    if self.exec_body(env, body)?.is_some() {
                        return Err(Diagnostic::new(return_span(body), "`return` inside a `for` loop")
                            .note("expected `return` at the end of the function body, after the loop"));
                    }
                }
                Ok(None)
            }
            Stmt::Loop(l) => {
                self.lower_loop(env, l)?;
                Ok(None)
            }
            Stmt::If {
                cond, then, otherwise, ..
            } => match self.eval(env, cond)? {
                Val::Bool(true) => self.exec_body(env, then),
                Val::Bool(false) => match otherwise {
                    Some(b) => self.exec_body(env, b),
                    None => Ok(None),
                },
                other => Err(Diagnostic::new(
                    cond.span,
                    format!("an `if` condition must be a static bool, found {}", other.kind()),
                )
                .note("expected a condition on hyperparameters; for tensors use `where(cond, a, b)`")),
            },
            Stmt::Next { values, span } => {
                let Some(li) = env.in_loop else {
                    return Err(Diagnostic::new(*span, "`next` outside a `loop` body"));
                };
                for (name, e) in values {
                    if !self.loops[li].carried.contains(&name.name) {
                        return Err(
                            Diagnostic::new(name.span, format!("`{}` is not carried by this loop", name.name)).note(
                                format!(
                                    "expected one of: {}",
                                    self.loops[li]
                                        .carried
                                        .iter()
                                        .map(|c| format!("`{c}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            ),
                        );
                    }
                    env.binding = name.name.clone();
                    let v = self.eval(env, e)?;
                    let carried_ty = match env.vars.get(&name.name) {
                        Some(Val::Tensor(t)) => Some(self.ty(*t).dtype),
                        _ => None,
                    };
                    let t = self.tensor_of(env, &v, carried_ty, e.span)?;
                    self.loops[li].next.insert(name.name.clone(), (t, e.span));
                }
                Ok(None)
            }
            Stmt::Emit { name, value, span } => {
                let Some(li) = env.in_loop else {
                    return Err(Diagnostic::new(*span, "`emit` outside a `loop` body"));
                };
                if self.loops[li].emits.iter().any(|(n, _, _)| *n == name.name) {
                    return Err(Diagnostic::new(name.span, format!("`{}` is emitted twice", name.name)));
                }
                env.binding = name.name.clone();
                let v = self.eval(env, value)?;
                let t = self.tensor_of(env, &v, None, value.span)?;
                self.loops[li].emits.push((name.name.clone(), t, value.span));
                Ok(None)
            }
            Stmt::Return { values, .. } => {
                let mut out = Vec::new();
                for (name, e) in values {
                    let n = name.as_ref().map(|n| n.name.clone()).or(match &e.kind {
                        ExprKind::Name(n) => Some(n.clone()),
                        _ => None,
                    });
                    env.binding = n.clone().unwrap_or_default();
                    out.push((n, self.eval(env, e)?, e.span));
                }
                Ok(Some(out))
            }
        }
    }

    fn bind_pattern(&mut self, env: &mut Env, pat: &Pattern, v: Val, span: Span) -> R<()> {
        match pat {
            Pattern::Name(n) => {
                env.vars.insert(n.name.clone(), v);
                Ok(())
            }
            Pattern::Wild(_) => Ok(()),
            Pattern::Tuple(ps, pspan) => {
                let items = match v {
                    Val::Tuple(xs) | Val::List(xs) => xs,
                    other => {
                        return Err(Diagnostic::new(
                            span,
                            format!("cannot unpack {} into {} names", other.kind(), ps.len()),
                        ));
                    }
                };
                if items.len() != ps.len() {
                    return Err(Diagnostic::new(
                        *pspan,
                        format!("cannot unpack {} values into {} names", items.len(), ps.len()),
                    ));
                }
                for (p, x) in ps.iter().zip(items) {
                    self.bind_pattern(env, p, x, span)?;
                }
                Ok(())
            }
        }
    }

    // ---- loops ---------------------------------------------------------------------------

    fn loop_bounds(&mut self, env: &Env, l: &LoopStmt) -> R<(Dim, Dim, u64)> {
        let mut start = Dim::c(0);
        let mut trips = None;
        let range_span = l.range.as_ref().map_or(l.var.span, |(a, b)| a.span.to(b.span));
        if let Some((a, b)) = &l.range {
            let va = self.eval_static(env, a)?;
            let vb = self.eval_static(env, b)?;
            let (Some(da), Some(db)) = (va.as_dim(), vb.as_dim()) else {
                return Err(Diagnostic::new(
                    a.span.to(b.span),
                    "a loop range must be integers or dims",
                ));
            };
            trips = Some(&db - &da);
            start = da;
        }
        let max = match &l.max {
            None => None,
            Some(m) => match self.eval_static(env, m)? {
                Val::Int(i) if i >= 0 => Some(i as u64),
                other => {
                    return Err(Diagnostic::new(
                        m.span,
                        format!("`max` needs a static non-negative integer, found {}", other.kind()),
                    ));
                }
            },
        };
        match (trips, max) {
            (Some(t), Some(m)) => {
                if let Some(c) = t.as_const()
                    && (c < 0 || c as u64 > m)
                {
                    return Err(Diagnostic::new(
                        range_span,
                        format!("the range has {c} iterations, more than `max {m}`"),
                    )
                    .note(format!("expected a range of at most {m} iterations, or a larger `max`")));
                }
                Ok((start, t, m))
            }
            (Some(t), None) => match t.as_const() {
                Some(c) if c >= 0 => Ok((start, t, c as u64)),
                Some(c) => Err(
                    Diagnostic::new(range_span, format!("the loop range has {c} iterations"))
                        .note("expected an end that is not before the start"),
                ),
                None => Err(
                    Diagnostic::new(l.var.span, format!("loop over `{}` iterations has no static bound", t))
                        .note("expected a static maximum after the range, e.g. `loop i in 0..N max 512`"),
                ),
            },
            (None, Some(m)) => Ok((start, Dim::c(m as i64), m)),
            (None, None) => Err(Diagnostic::new(l.var.span, "loop without a bound")
                .note("expected a range `in 0..N` or a maximum `max 64`")),
        }
    }

    fn lower_loop(&mut self, env: &mut Env, l: &LoopStmt) -> R<()> {
        let (start, trips, max_trips) = self.loop_bounds(env, l)?;
        let mut inits = Vec::new();
        for (name, e) in &l.carry {
            if inits.iter().any(|(n, _): &(String, TVal)| *n == name.name) {
                return Err(Diagnostic::new(name.span, format!("`{}` is carried twice", name.name)));
            }
            env.binding = name.name.clone();
            let v = self.eval(env, e)?;
            let t = self.tensor_of(env, &v, None, e.span)?;
            inits.push((name.name.clone(), t));
        }
        // The body graph: index, carried values, then captures as they are discovered.
        self.frames.push(Frame::new());
        let level = self.level();
        let mut benv = env.clone();
        let index = self.graph().add_input(&l.var.name, TensorType::scalar(DType::I64));
        let mut idx = TVal {
            level,
            v: Value::of(index),
        };
        if start != Dim::c(0) {
            let s = Val::from_dim(start);
            idx = match self.binary(&benv, ast::BinOp::Add, Val::Tensor(idx), s, l.var.span)? {
                Val::Tensor(t) => t,
                _ => unreachable!("tensor + static is a tensor"),
            };
        }
        benv.vars.insert(l.var.name.clone(), Val::Tensor(idx));
        for (name, init) in &inits {
            let ty = self.ty(*init).clone();
            let id = self.graph().add_input(name, ty);
            benv.vars.insert(
                name.clone(),
                Val::Tensor(TVal {
                    level,
                    v: Value::of(id),
                }),
            );
        }
        self.loops.push(LoopCtx {
            carried: inits.iter().map(|(n, _)| n.clone()).collect(),
            next: HashMap::new(),
            emits: Vec::new(),
        });
        benv.in_loop = Some(self.loops.len() - 1);
        if self.exec_body(&mut benv, &l.body)?.is_some() {
            return Err(Diagnostic::new(return_span(&l.body), "`return` inside a `loop` body")
                .note("expected `next` and `emit` in a loop body, and `return` after the loop"));
        }
        let ctx = self.loops.pop().expect("pushed above");
        for name in benv.vars.keys().filter(|n| !env.vars.contains_key(*n)) {
            self.loop_locals.insert(name.clone(), l.span);
        }
        let mut outputs = Vec::new();
        let mut after = benv.clone();
        for (name, init) in &inits {
            let t = match ctx.next.get(name) {
                Some((t, span)) => {
                    let (want, got) = (self.ty(*init).clone(), self.ty(*t).clone());
                    if want != got {
                        return Err(Diagnostic::new(
                            *span,
                            format!("`next {name}` has type {got}, but `{name}` is carried as {want}"),
                        )
                        .note("expected the same dtype and shape in every iteration"));
                    }
                    *t
                }
                None => match benv.vars[name] {
                    Val::Tensor(t) if t.level == level => t,
                    _ => unreachable!("carried names are body inputs"),
                },
            };
            after.vars.insert(name.clone(), Val::Tensor(t));
            outputs.push((name.clone(), self.get(t)));
        }
        if let Some(u) = &l.until {
            after.binding = "until".into();
            let v = self.eval(&after, u)?;
            let t = self.tensor_of(&after, &v, Some(DType::Bool), u.span)?;
            let ty = self.ty(t).clone();
            if ty != TensorType::scalar(DType::Bool) {
                return Err(
                    Diagnostic::new(u.span, format!("`until` needs a bool scalar, found {ty}"))
                        .note("expected e.g. `until all(done)` or `until any(x > 0)`"),
                );
            }
            let v = self.get(t);
            outputs.push(("stop".into(), v));
        }
        for (name, t, _) in &ctx.emits {
            let v = self.get(*t);
            outputs.push((name.clone(), v));
        }
        let mut frame = self.frames.pop().expect("pushed above");
        frame.graph.outputs = outputs;
        let outer = self.level();
        let mut operands: Vec<TVal> = inits.iter().map(|(_, t)| *t).collect();
        operands.extend(frame.captures.iter().map(|v| TVal { level: outer, v: *v }));
        let op = Op::Loop(Box::new(LoopOp {
            trips,
            max_trips,
            n_carried: inits.len(),
            has_stop: l.until.is_some(),
            n_emit: ctx.emits.len(),
            body: frame.graph,
        }));
        env.binding = l.var.name.clone();
        let results = self.node(env, op, &operands, l.span)?;
        for (i, (name, _)) in inits.iter().enumerate() {
            env.vars.insert(name.clone(), Val::Tensor(results[i]));
        }
        for (j, (name, _, _)) in ctx.emits.iter().enumerate() {
            env.vars.insert(name.clone(), Val::Tensor(results[inits.len() + j]));
        }
        Ok(())
    }

    // ---- entry points --------------------------------------------------------------------

    /// Lowers one entry point of the model instance `root` to a function.
    pub(super) fn lower_entry(&mut self, root: InstId, file: FileId, f: &FnDef) -> R<Function> {
        self.frames.clear();
        self.loops.clear();
        self.frames.push(Frame::new());
        let result = self.lower_entry_body(root, file, f);
        let frame = self.frames.pop();
        self.frames.clear();
        self.loops.clear();
        let outputs = result?;
        let mut graph = frame.expect("the entry frame").graph;
        graph.outputs = outputs;
        Ok(Function {
            name: f.name.name.clone(),
            graph,
        })
    }

    fn lower_entry_body(&mut self, root: InstId, file: FileId, f: &FnDef) -> R<Vec<(String, Value)>> {
        let mut env = Env {
            vars: HashMap::new(),
            inst: Some(root),
            file,
            binding: String::new(),
            in_loop: None,
        };
        for p in &f.params {
            let Some(TypeExpr::Tensor {
                dtype,
                dims: Some(dims),
                ..
            }) = &p.ty
            else {
                return Err(Diagnostic::new(
                    p.name.span,
                    format!("entry input `{}` needs a tensor type with a shape", p.name.name),
                )
                .note("expected e.g. `points: f32[B, N, 2]`, or `t: i64[]` for a scalar"));
            };
            let dt = parse_dtype(dtype)?;
            let shape = self.entry_dims(&mut env, dims)?;
            let id = self.graph().add_input(&p.name.name, TensorType::new(dt, shape));
            env.vars.insert(
                p.name.name.clone(),
                Val::Tensor(TVal {
                    level: 0,
                    v: Value::of(id),
                }),
            );
        }
        let Some(ret) = self.exec_body(&mut env, &f.body)? else {
            return Err(
                Diagnostic::new(f.name.span, format!("entry `{}` ends without `return`", f.name.name))
                    .note("expected a `return` as the last statement"),
            );
        };
        let mut outputs: Vec<(String, Value)> = Vec::new();
        for (i, (name, v, span)) in ret.into_iter().enumerate() {
            let name = name.unwrap_or_else(|| format!("output{i}"));
            if outputs.iter().any(|(n, _)| *n == name) {
                return Err(Diagnostic::new(span, format!("two outputs are named `{name}`"))
                    .note("expected `return a = x, b = y`"));
            }
            let t = self.tensor_of(&env, &v, None, span).map_err(|d| match v {
                Val::Tensor(_) | Val::Int(_) | Val::Float(_) | Val::Bool(_) | Val::Dim(_) => d,
                _ => Diagnostic::new(
                    span,
                    format!("output `{name}` of entry `{}` is {}", f.name.name, v.kind()),
                )
                .note("expected a tensor: an entry returns tensors"),
            })?;
            outputs.push((name, self.get(t)));
        }
        if let Some(rets) = &f.ret {
            if rets.len() != outputs.len() {
                return Err(Diagnostic::new(
                    f.name.span,
                    format!(
                        "entry `{}` returns {} values but declares {}",
                        f.name.name,
                        outputs.len(),
                        rets.len()
                    ),
                ));
            }
            for (r, (name, v)) in rets.iter().zip(&outputs) {
                let TypeExpr::Tensor { dtype, dims, span } = r else {
                    return Err(Diagnostic::new(r.span(), "an entry returns tensors")
                        .note("expected a tensor type like `f32[B, N]`"));
                };
                let got = self.frames[0].graph.ty(*v).clone();
                let dt = parse_dtype(dtype)?;
                let ok = dt == got.dtype
                    && match dims {
                        None => true,
                        Some(ds) => {
                            let shape = self.entry_dims(&mut env, ds)?;
                            shape == got.shape
                        }
                    };
                if !ok {
                    return Err(Diagnostic::new(
                        *span,
                        format!("output `{name}` has type {got}, which differs from the declared type"),
                    )
                    .note(format!("expected {}", self.prog.sources.snippet(*span))));
                }
            }
        }
        Ok(outputs)
    }

    /// The dims of an entry type: static expressions, or new symbols for unknown names.
    fn entry_dims(&mut self, env: &mut Env, dims: &[Expr]) -> R<Vec<Dim>> {
        let mut shape = Vec::new();
        for d in dims {
            // A name that is not a value here (unknown, or a block of the file) is a new symbol.
            if let ExprKind::Name(n) = &d.kind
                && !matches!(self.try_lookup(env, n, d.span), Ok(Some(_)))
            {
                env.vars.insert(n.clone(), Val::Dim(Dim::sym(n)));
                shape.push(Dim::sym(n));
                continue;
            }
            let v = self.eval_static(env, d)?;
            match v.as_dim() {
                Some(x) if x.as_const().is_none_or(|c| c >= 0) => shape.push(x),
                _ => {
                    return Err(Diagnostic::new(
                        d.span,
                        format!(
                            "a dimension must be a non-negative integer or a name, found {}",
                            v.kind()
                        ),
                    ));
                }
            }
        }
        Ok(shape)
    }
}

/// Parses a dtype name from the source.
pub(super) fn parse_dtype(id: &ast::Ident) -> R<DType> {
    DType::from_name(&id.name).ok_or_else(|| {
        Diagnostic::new(id.span, format!("unknown dtype `{}`", id.name))
            .note("expected one of: f32, f16, bf16, i32, i64, bool")
    })
}

fn pattern_name(p: &Pattern) -> String {
    match p {
        Pattern::Name(n) => n.name.clone(),
        Pattern::Wild(_) => String::new(),
        Pattern::Tuple(ps, _) => ps.iter().map(pattern_name).collect::<Vec<_>>().join(","),
    }
}

/// `` `a`, `b` `` for messages about a parameter list.
fn param_list(params: &[FnParam]) -> String {
    params
        .iter()
        .map(|p| format!("`{}`", p.name.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The span of the `return` statement that ends `body` (the body's span if there is none).
fn return_span(body: &Body) -> Span {
    fn find(body: &Body) -> Option<Span> {
        body.stmts.iter().find_map(|s| match s {
            Stmt::Return { span, .. } => Some(*span),
            Stmt::If { then, otherwise, .. } => find(then).or_else(|| otherwise.as_ref().and_then(find)),
            _ => None,
        })
    }
    find(body).unwrap_or(body.span)
}

fn stmt_span(s: &Stmt) -> Span {
    match s {
        Stmt::Let { span, .. }
        | Stmt::For { span, .. }
        | Stmt::If { span, .. }
        | Stmt::Next { span, .. }
        | Stmt::Emit { span, .. }
        | Stmt::Return { span, .. } => *span,
        Stmt::Loop(l) => l.span,
    }
}

/// The standard library module that defines an item `name`, for "add an import" hints.
pub(super) fn std_module_defining(name: &str) -> Option<&'static str> {
    let defines = |text: &str| {
        mlc_dsl::parser::parse_text(text, FileId(0)).is_ok_and(|f| {
            f.items.iter().any(|it| match it {
                Item::Fn(f) => f.name.name == name,
                Item::Block(b) => b.name.name == name,
                Item::Import(_) => false,
            })
        })
    };
    mlc_dsl::STD_MODULES
        .iter()
        .find(|(_, text)| defines(text))
        .map(|(m, _)| *m)
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[allow(dead_code)]
fn shape_str(s: &[Dim]) -> String {
    shape_to_string(s)
}
