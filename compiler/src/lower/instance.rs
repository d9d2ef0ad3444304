//! Block instances: hyperparameters bound, parameters named by dotted path, sub-blocks built,
//! and parameter sharing (`shares`) resolved.

use std::collections::{BTreeMap, HashMap};

use mlc_dsl::ast::{self, Item, Member, TypeExpr};
use mlc_dsl::loader::ItemRef;
use mlc_dsl::{Diagnostic, Span};
use mlc_ir::{DType, Init, ParamDecl};

use super::{Env, InstId, Lowerer, R, Val};

/// A block instantiated with hyperparameters.
#[derive(Clone, Debug)]
pub struct Instance {
    pub block: ItemRef,
    /// Dotted path from the model (`layers.0.attn`); empty for the model itself.
    pub path: String,
    /// Hyperparameters and block-level `let`s.
    pub env: HashMap<String, Val>,
    /// Parameters by local name; `None` when disabled by an `if`.
    pub params: BTreeMap<String, Option<ParamDecl>>,
    /// Sub-blocks by local name: `Val::Inst`, `Val::Stack`, or `Val::None` when disabled.
    pub subs: BTreeMap<String, Val>,
}

/// The most elements one parameter may have.
const MAX_PARAM_ELEMENTS: u64 = 1 << 40;

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Parses a `--set name=value` override as the hyperparameter's kind.
fn parse_override(text: &str) -> Option<Val> {
    match text {
        "true" => Some(Val::Bool(true)),
        "false" => Some(Val::Bool(false)),
        _ => text
            .parse::<i64>()
            .map(Val::Int)
            .ok()
            .or_else(|| text.parse::<f64>().map(Val::Float).ok()),
    }
}

impl<'p> Lowerer<'p> {
    /// Builds the model instance with its defaults and the `--set` overrides.
    pub(super) fn instantiate_model(&mut self, model: ItemRef, overrides: &[(String, String)]) -> R<InstId> {
        let def = self.block_def(model);
        let mut named = Vec::new();
        for (k, v) in overrides {
            let Some(val) = parse_override(v) else {
                return Err(
                    Diagnostic::new(def.name.span, format!("bad value `{v}` for hyperparameter `{k}`"))
                        .note("expected an integer, a float, `true` or `false`"),
                );
            };
            if !def.hparams.iter().any(|h| h.name.name == *k) {
                let names: Vec<String> = def.hparams.iter().map(|h| format!("`{}`", h.name.name)).collect();
                return Err(Diagnostic::new(
                    def.name.span,
                    format!("model `{}` has no hyperparameter `{k}`", def.name.name),
                )
                .note(format!("expected one of: {}", names.join(", "))));
            }
            named.push(super::ArgVal {
                name: Some(k.clone()),
                val,
                span: def.name.span,
            });
        }
        self.instantiate(model, named, String::new(), def.name.span)
    }

    /// Instantiates `block` with evaluated arguments at `path`.
    pub(super) fn instantiate(
        &mut self,
        block: ItemRef,
        args: Vec<super::ArgVal>,
        path: String,
        span: Span,
    ) -> R<InstId> {
        let def = self.block_def(block);
        if self.depth > 64 {
            return Err(
                Diagnostic::new(span, format!("block `{}` instantiates itself", def.name.name))
                    .note("expected a finite nesting of blocks"),
            );
        }
        let mut env = HashMap::new();
        let mut base = Env {
            vars: HashMap::new(),
            inst: None,
            file: block.file,
            binding: path.clone(),
            in_loop: None,
        };
        for h in &def.hparams {
            if let Some(ty @ TypeExpr::Tensor { .. }) = &h.ty {
                return Err(Diagnostic::new(
                    ty.span(),
                    format!("hyperparameter `{}` cannot be a tensor", h.name.name),
                )
                .note("expected int, float or bool"));
            }
        }
        let what = format!("{} `{}`", if def.is_model { "model" } else { "block" }, def.name.name);
        let bound = self.bind_args(&def.hparams, args, &mut base, span, &what)?;
        for (h, a) in def.hparams.iter().zip(bound) {
            if matches!(a.val, Val::Tensor(_)) {
                return Err(
                    Diagnostic::new(a.span, format!("hyperparameter `{}` got a tensor", h.name.name))
                        .note("expected a value known at compile time"),
                );
            }
            env.insert(h.name.name.clone(), a.val);
        }
        let id = self.insts.len();
        self.insts.push(Instance {
            block,
            path: path.clone(),
            env,
            params: BTreeMap::new(),
            subs: BTreeMap::new(),
        });
        self.depth += 1;
        let result = self.build_members(id, def);
        self.depth -= 1;
        result.map(|_| id)
    }

    fn build_members(&mut self, id: InstId, def: &'p ast::BlockDef) -> R<()> {
        let file = self.insts[id].block.file;
        let mut names: HashMap<&str, Span> = def
            .hparams
            .iter()
            .map(|h| (h.name.name.as_str(), h.name.span))
            .collect();
        for m in &def.members {
            if let Some(name) = member_name(m)
                && let Some(prev) = names.insert(&name.name, name.span)
            {
                let (line, col) = self.prog.sources.file(prev.file).line_col(prev.start as usize);
                return Err(Diagnostic::new(
                    name.span,
                    format!("`{}` is already defined in block `{}`", name.name, def.name.name),
                )
                .note(format!(
                    "the first definition is at line {line}, column {col}; expected one meaning per name"
                )));
            }
            let env = Env {
                vars: self.insts[id].env.clone(),
                inst: None,
                file,
                binding: self.insts[id].path.clone(),
                in_loop: None,
            };
            match m {
                Member::Let { name, value, .. } => {
                    let v = self.eval_static(&env, value)?;
                    self.insts[id].env.insert(name.name.clone(), v);
                }
                Member::Param {
                    name,
                    dtype,
                    dims,
                    init,
                    cond,
                    ..
                } => {
                    let decl = if self.eval_cond(&env, cond.as_ref())? {
                        Some(self.param_decl(&env, id, name, dtype, dims, init.as_ref())?)
                    } else {
                        None
                    };
                    self.insts[id].params.insert(name.name.clone(), decl);
                }
                Member::Sub {
                    name,
                    repeat,
                    block,
                    args,
                    shares,
                    cond,
                    span,
                } => {
                    let v = if self.eval_cond(&env, cond.as_ref())? {
                        self.build_sub(&env, id, name, repeat.as_ref(), block, args, *span)?
                    } else {
                        Val::None
                    };
                    if let (Some(target), false) = (shares, matches!(v, Val::None)) {
                        let tv = self.eval_member_path(id, target)?;
                        self.share(&v, &tv, target.span)?;
                    }
                    self.insts[id].subs.insert(name.name.clone(), v);
                }
                Member::Fn(_) | Member::Entry(_) => {}
            }
        }
        Ok(())
    }

    fn eval_cond(&mut self, env: &Env, cond: Option<&ast::Expr>) -> R<bool> {
        let Some(c) = cond else { return Ok(true) };
        match self.eval_static(env, c)? {
            Val::Bool(b) => Ok(b),
            other => Err(Diagnostic::new(
                c.span,
                format!("a condition must be a static bool, found {}", other.kind()),
            )),
        }
    }

    fn param_decl(
        &mut self,
        env: &Env,
        id: InstId,
        name: &ast::Ident,
        dtype: &ast::Ident,
        dims: &[ast::Expr],
        init: Option<&ast::Expr>,
    ) -> R<ParamDecl> {
        let dt = DType::from_name(&dtype.name).ok_or_else(|| {
            Diagnostic::new(dtype.span, format!("unknown dtype `{}`", dtype.name))
                .note("expected one of: f32, f16, bf16, i32, i64, bool")
        })?;
        let mut shape = Vec::new();
        let mut count: u64 = 1;
        for d in dims {
            match self.eval_static(env, d)? {
                Val::Int(n) if n >= 0 => {
                    shape.push(n as u64);
                    count = count.saturating_mul(n as u64);
                }
                other => {
                    return Err(Diagnostic::new(
                        d.span,
                        format!(
                            "a parameter dimension must be a static non-negative integer, found {}",
                            other.kind()
                        ),
                    ));
                }
            }
        }
        if count > MAX_PARAM_ELEMENTS {
            let shown: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            return Err(Diagnostic::new(
                name.span,
                format!("parameter `{}` of shape [{}] is too large", name.name, shown.join(", ")),
            )
            .note(format!(
                "expected at most {MAX_PARAM_ELEMENTS} elements (2^40) per parameter"
            )));
        }
        let init = match init {
            None => Init::Normal(0.02),
            Some(e) => self.eval_init(env, e)?,
        };
        Ok(ParamDecl {
            name: join(&self.insts[id].path, &name.name),
            dtype: dt,
            shape,
            init,
        })
    }

    fn eval_init(&mut self, env: &Env, e: &ast::Expr) -> R<Init> {
        let bad = || {
            Diagnostic::new(e.span, "bad parameter initialiser")
                .note("expected one of: zeros, ones, normal(std), uniform(bound), fill(value)")
        };
        match &e.kind {
            ast::ExprKind::Name(n) if n == "zeros" => Ok(Init::Fill(0.0)),
            ast::ExprKind::Name(n) if n == "ones" => Ok(Init::Fill(1.0)),
            ast::ExprKind::Call { callee, args } if args.len() == 1 => {
                let ast::ExprKind::Name(f) = &callee.kind else {
                    return Err(bad());
                };
                let v = match self.eval_static(env, &args[0].value)? {
                    Val::Int(i) => i as f64,
                    Val::Float(f) => f,
                    _ => return Err(bad()),
                };
                match f.as_str() {
                    "normal" => Ok(Init::Normal(v)),
                    "uniform" => Ok(Init::Uniform(v)),
                    "fill" => Ok(Init::Fill(v)),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build_sub(
        &mut self,
        env: &Env,
        id: InstId,
        name: &ast::Ident,
        repeat: Option<&ast::Expr>,
        block: &ast::Ident,
        args: &[ast::Arg],
        span: Span,
    ) -> R<Val> {
        let file = self.insts[id].block.file;
        let target = match self.prog.scopes.get(&file).and_then(|s| s.get(&block.name)) {
            Some(r) if matches!(self.item(*r), Item::Block(_)) => *r,
            Some(_) => return Err(Diagnostic::new(block.span, format!("`{}` is not a block", block.name))),
            None => {
                let mut d = Diagnostic::new(block.span, format!("unknown block `{}`", block.name));
                if let Some(m) = super::stmt::std_module_defining(&block.name) {
                    d = d.note(format!(
                        "`{}` is defined in the standard library: add `import std.{m}`",
                        block.name
                    ));
                }
                return Err(d);
            }
        };
        let arg_vals = self.eval_args(env, args)?;
        let path = join(&self.insts[id].path, &name.name);
        match repeat {
            None => Ok(Val::Inst(self.instantiate(target, arg_vals, path, span)?)),
            Some(n) => {
                let count = match self.eval_static(env, n)? {
                    Val::Int(c) if c >= 0 => c as usize,
                    other => {
                        return Err(Diagnostic::new(
                            n.span,
                            format!("`repeat` needs a static non-negative count, found {}", other.kind()),
                        ));
                    }
                };
                let mut insts = Vec::with_capacity(count);
                for i in 0..count {
                    insts.push(self.instantiate(target, arg_vals.clone(), format!("{path}.{i}"), span)?);
                }
                Ok(Val::Stack { insts })
            }
        }
    }

    /// Resolves `a` or `a.b.c` among the members built so far.
    fn eval_member_path(&mut self, id: InstId, e: &ast::Expr) -> R<Val> {
        match &e.kind {
            ast::ExprKind::Name(n) => self.insts[id].subs.get(n).cloned().ok_or_else(|| {
                Diagnostic::new(
                    e.span,
                    format!("`shares` names `{n}`, which is not a sub-block defined before it"),
                )
            }),
            ast::ExprKind::Field(obj, f) => match self.eval_member_path(id, obj)? {
                Val::Inst(i) => self.insts[i].subs.get(&f.name).cloned().ok_or_else(|| {
                    Diagnostic::new(
                        f.span,
                        format!("`{}` has no sub-block `{}`", self.insts[i].path, f.name),
                    )
                }),
                other => Err(Diagnostic::new(
                    obj.span,
                    format!("expected a block instance, found {}", other.kind()),
                )),
            },
            _ => Err(Diagnostic::new(
                e.span,
                "`shares` expects the name of a sub-block, like `upper` or `upper.layers`",
            )),
        }
    }

    /// Makes every parameter of `user` refer to the same-named parameter of `owner`.
    fn share(&mut self, user: &Val, owner: &Val, span: Span) -> R<()> {
        match (user, owner) {
            (Val::Inst(u), Val::Inst(o)) => {
                let (ub, ob) = (self.insts[*u].block, self.insts[*o].block);
                if ub != ob {
                    let (un, on) = (&self.block_def(ub).name.name, &self.block_def(ob).name.name);
                    return Err(Diagnostic::new(
                        span,
                        format!("cannot share parameters between block `{un}` and block `{on}`"),
                    )
                    .note("expected two instances of the same block"));
                }
                let params: Vec<(String, Option<ParamDecl>)> = self.insts[*u]
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (name, decl) in params {
                    let Some(mine) = decl else { continue };
                    let theirs = self.insts[*o].params.get(&name).cloned().flatten();
                    match theirs {
                        Some(t) if t.dtype == mine.dtype && t.shape == mine.shape => {
                            self.insts[*u].params.insert(name, Some(t));
                        }
                        Some(t) => {
                            return Err(Diagnostic::new(
                                span,
                                format!("cannot share parameter `{}` with `{}`", mine.name, t.name),
                            )
                            .note(format!(
                                "shapes differ: {}{:?} and {}{:?}",
                                mine.dtype, mine.shape, t.dtype, t.shape
                            )));
                        }
                        None => {
                            return Err(Diagnostic::new(
                                span,
                                format!(
                                    "cannot share parameter `{}`: `{}` has no `{name}`",
                                    mine.name, self.insts[*o].path
                                ),
                            ));
                        }
                    }
                }
                let subs: Vec<(String, Val)> = self.insts[*u]
                    .subs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for (name, v) in subs {
                    if matches!(v, Val::None) {
                        continue;
                    }
                    let theirs = self.insts[*o].subs.get(&name).cloned().unwrap_or(Val::None);
                    if matches!(theirs, Val::None) {
                        return Err(Diagnostic::new(
                            span,
                            format!("cannot share `{name}`: `{}` has no such sub-block", self.insts[*o].path),
                        ));
                    }
                    self.share(&v, &theirs, span)?;
                }
                Ok(())
            }
            (Val::Stack { insts: u }, Val::Stack { insts: o }) => {
                if u.len() > o.len() {
                    return Err(Diagnostic::new(
                        span,
                        format!("cannot share {} layers with a stack of {}", u.len(), o.len()),
                    )
                    .note("expected a stack at least as deep as the one that shares it"));
                }
                for (a, b) in u.clone().iter().zip(o.clone().iter()) {
                    self.share(&Val::Inst(*a), &Val::Inst(*b), span)?;
                }
                Ok(())
            }
            (u, o) => Err(Diagnostic::new(
                span,
                format!("cannot share between {} and {}", u.kind(), o.kind()),
            )),
        }
    }
}

/// The name a member defines inside its block (entries are called from outside only).
fn member_name(m: &Member) -> Option<&ast::Ident> {
    match m {
        Member::Param { name, .. } | Member::Sub { name, .. } | Member::Let { name, .. } => Some(name),
        Member::Fn(f) => Some(&f.name),
        Member::Entry(_) => None,
    }
}
