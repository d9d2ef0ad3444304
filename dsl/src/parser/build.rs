//! From pest pairs to items, members, statements, types and patterns. Expressions are in
//! `expr.rs`.

use pest::iterators::Pair;

use super::Rule;
use crate::ast::*;
use crate::source::{Diagnostic, FileId, Span};

pub(super) type PResult<T> = Result<T, Diagnostic>;

/// Converts one file's parse tree into AST nodes.
pub(super) struct Builder {
    pub(super) file: FileId,
    /// Current expression nesting, to refuse absurdly deep input before the stack runs out.
    pub(super) depth: usize,
}

/// Punctuation and keyword pairs carry no information beyond their presence; most builders skip
/// them.
fn is_token(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        kw_import
            | kw_fn
            | kw_block
            | kw_model
            | kw_param
            | kw_let
            | kw_for
            | kw_in
            | kw_loop
            | kw_return
            | kw_next
            | kw_emit
            | kw_if
            | kw_else
            | kw_entry
            | kw_repeat
            | kw_std
            | kw_max
            | kw_carry
            | kw_until
            | kw_shares
            | lparen
            | rparen
            | rbracket
            | lbrace
            | rbrace
            | comma
            | colon
            | eq
            | dotdot
            | arrow
            | EOI
    )
}

/// The end of the last non-blank text in `text[from..to]` that is not a comment (or `from`).
fn trim_end(text: &str, from: usize, to: usize) -> usize {
    let (mut i, mut end) = (from, from);
    while i < to {
        let rest = &text[i..to];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |k| k + 2);
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            i += c.len_utf8();
            if !(c.is_whitespace() || c == '\u{feff}') {
                end = i;
            }
        }
    }
    end
}

/// The meaningful children of a pair.
pub(super) fn kids(pair: Pair<'_, Rule>) -> Vec<Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_token(p.as_rule())).collect()
}

impl Builder {
    pub(super) fn new(file: FileId) -> Builder {
        Builder { file, depth: 0 }
    }

    /// The span of a pair's source text. Pest includes the whitespace skipped before an optional
    /// part that did not match (`a ~ b?`), so the end is recomputed: the end of the last token
    /// pair, extended over literal tokens (but not whitespace or comments) that follow it.
    pub(super) fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        let mut leaf_end = s.start();
        let mut last = pair.clone();
        while let Some(child) = last.clone().into_inner().last() {
            leaf_end = child.as_span().end();
            last = child;
        }
        Span::new(self.file, s.start(), trim_end(s.get_input(), leaf_end, s.end()))
    }

    pub(super) fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    /// A grammar/builder mismatch; cannot happen for trees the grammar produces, but is reported
    /// rather than panicking.
    pub(super) fn internal(&self, pair: &Pair<'_, Rule>, what: &str) -> Diagnostic {
        Diagnostic::new(
            self.span(pair),
            format!(
                "internal parser error: unexpected {:?} while reading {what}",
                pair.as_rule()
            ),
        )
    }

    pub(super) fn file(&mut self, pair: Pair<'_, Rule>) -> PResult<File> {
        let mut items = Vec::new();
        for p in kids(pair) {
            let Some(p) = kids(p.clone()).into_iter().next() else {
                return Err(self.internal(&p, "an item"));
            };
            items.push(match p.as_rule() {
                Rule::import => Item::Import(self.import(p)?),
                Rule::fn_def => Item::Fn(self.fn_def(p)?),
                Rule::block_def => Item::Block(self.block_def(p)?),
                _ => return Err(self.internal(&p, "a file")),
            });
        }
        Ok(File { items })
    }

    fn import(&mut self, pair: Pair<'_, Rule>) -> PResult<Import> {
        let span = self.span(&pair);
        let mut target = None;
        let mut names = None;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::std_path => {
                    target = Some(ImportTarget::Std(kids(p).into_iter().map(|i| self.ident(i)).collect()))
                }
                Rule::string => {
                    let s = p.as_str();
                    target = Some(ImportTarget::File(s[1..s.len() - 1].to_string()));
                }
                Rule::import_names => names = Some(kids(p).into_iter().map(|i| self.ident(i)).collect()),
                _ => return Err(self.internal(&p, "an import")),
            }
        }
        let target = target.ok_or_else(|| Diagnostic::new(span, "internal parser error: import without target"))?;
        Ok(Import { target, names, span })
    }

    /// `fn` and `entry` definitions share one shape.
    pub(super) fn fn_def(&mut self, pair: Pair<'_, Rule>) -> PResult<FnDef> {
        let span = self.span(&pair);
        let mut name = None;
        let mut params = Vec::new();
        let mut ret = None;
        let mut body = None;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::params => params = self.params(p)?,
                Rule::ret_ty => ret = Some(self.ret_ty(p)?),
                Rule::body => body = Some(self.body(p)?),
                Rule::fn_short => {
                    let e = self.expr_in(p)?;
                    let span = e.span;
                    let stmt = Stmt::Return {
                        values: vec![(None, e)],
                        span,
                    };
                    body = Some(Body {
                        stmts: vec![stmt],
                        span,
                    });
                }
                _ => return Err(self.internal(&p, "a function")),
            }
        }
        match (name, body) {
            (Some(name), Some(body)) => Ok(FnDef {
                name,
                params,
                ret,
                body,
                span,
            }),
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete function")),
        }
    }

    fn params(&mut self, pair: Pair<'_, Rule>) -> PResult<Vec<FnParam>> {
        kids(pair).into_iter().map(|p| self.param(p)).collect()
    }

    fn param(&mut self, pair: Pair<'_, Rule>) -> PResult<FnParam> {
        let mut name = None;
        let mut ty = None;
        let mut default = None;
        let span = self.span(&pair);
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::ty => ty = Some(self.ty(p)?),
                Rule::expr => default = Some(self.expr(p)?),
                _ => return Err(self.internal(&p, "a parameter")),
            }
        }
        let name = name.ok_or_else(|| Diagnostic::new(span, "internal parser error: parameter without name"))?;
        Ok(FnParam { name, ty, default })
    }

    fn ret_ty(&mut self, pair: Pair<'_, Rule>) -> PResult<Vec<TypeExpr>> {
        let mut out = Vec::new();
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ty => out.push(self.ty(p)?),
                Rule::ret_tuple => {
                    for t in kids(p) {
                        out.push(self.ty(t)?);
                    }
                }
                _ => return Err(self.internal(&p, "a result type")),
            }
        }
        Ok(out)
    }

    fn ty(&mut self, pair: Pair<'_, Rule>) -> PResult<TypeExpr> {
        let span = self.span(&pair);
        let inner = kids(pair);
        let Some(first) = inner.into_iter().next() else {
            return Err(Diagnostic::new(span, "internal parser error: empty type"));
        };
        match first.as_rule() {
            Rule::scalar_ty => Ok(match first.as_str() {
                "int" => TypeExpr::Int(span),
                "float" => TypeExpr::Float(span),
                _ => TypeExpr::Bool(span),
            }),
            Rule::dtype => Ok(TypeExpr::Tensor {
                dtype: self.ident(first),
                dims: None,
                span,
            }),
            Rule::tensor_ty => {
                let mut dtype = None;
                let mut dims = Some(Vec::new());
                for p in kids(first) {
                    match p.as_rule() {
                        Rule::dtype => dtype = Some(self.ident(p)),
                        Rule::ellipsis => dims = None,
                        Rule::expr => {
                            let e = self.expr(p)?;
                            if let Some(d) = dims.as_mut() {
                                d.push(e);
                            }
                        }
                        _ => return Err(self.internal(&p, "a tensor type")),
                    }
                }
                let dtype = dtype.ok_or_else(|| Diagnostic::new(span, "internal parser error: no dtype"))?;
                Ok(TypeExpr::Tensor { dtype, dims, span })
            }
            _ => Err(self.internal(&first, "a type")),
        }
    }

    fn block_def(&mut self, pair: Pair<'_, Rule>) -> PResult<BlockDef> {
        let span = self.span(&pair);
        let mut is_model = false;
        let mut name = None;
        let mut hparams = Vec::new();
        let mut members = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_model => is_model = true,
                Rule::ident => name = Some(self.ident(p)),
                Rule::params => hparams = self.params(p)?,
                Rule::member => members.push(self.member(p)?),
                r if is_token(r) => {}
                _ => return Err(self.internal(&p, "a block")),
            }
        }
        let name = name.ok_or_else(|| Diagnostic::new(span, "internal parser error: block without name"))?;
        Ok(BlockDef {
            is_model,
            name,
            hparams,
            members,
            span,
        })
    }

    fn member(&mut self, pair: Pair<'_, Rule>) -> PResult<Member> {
        let Some(p) = kids(pair.clone()).into_iter().next() else {
            return Err(self.internal(&pair, "a member"));
        };
        let span = self.span(&p);
        match p.as_rule() {
            Rule::fn_def => Ok(Member::Fn(self.fn_def(p)?)),
            Rule::entry_def => Ok(Member::Entry(self.fn_def(p)?)),
            Rule::let_member => {
                let (name, value) = self.binding(p)?;
                Ok(Member::Let { name, value, span })
            }
            Rule::param_member => self.param_member(p),
            Rule::sub_member => self.sub_member(p),
            _ => Err(self.internal(&p, "a member")),
        }
    }

    fn param_member(&mut self, pair: Pair<'_, Rule>) -> PResult<Member> {
        let span = self.span(&pair);
        let (mut name, mut dtype, mut dims, mut init, mut cond) = (None, None, Vec::new(), None, None);
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::dtype => dtype = Some(self.ident(p)),
                Rule::dims => dims = self.exprs(p)?,
                Rule::param_init => init = Some(self.expr_in(p)?),
                Rule::cond => cond = Some(self.expr_in(p)?),
                _ => return Err(self.internal(&p, "a parameter")),
            }
        }
        match (name, dtype) {
            (Some(name), Some(dtype)) => Ok(Member::Param {
                name,
                dtype,
                dims,
                init,
                cond,
                span,
            }),
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete parameter")),
        }
    }

    fn sub_member(&mut self, pair: Pair<'_, Rule>) -> PResult<Member> {
        let span = self.span(&pair);
        let mut idents = Vec::new();
        let (mut repeat, mut args, mut shares, mut cond) = (None, Vec::new(), None, None);
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ident => idents.push(self.ident(p)),
                Rule::repeat_count => repeat = Some(self.expr_in(p)?),
                Rule::block_args => args = self.call_args(p)?,
                Rule::shares => shares = Some(self.expr_in(p)?),
                Rule::cond => cond = Some(self.expr_in(p)?),
                _ => return Err(self.internal(&p, "a sub-block")),
            }
        }
        let mut idents = idents.into_iter();
        match (idents.next(), idents.next()) {
            (Some(name), Some(block)) => Ok(Member::Sub {
                name,
                repeat,
                block,
                args,
                shares,
                cond,
                span,
            }),
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete sub-block")),
        }
    }

    /// `NAME = EXPR` (bindings in `carry`, `next`, `emit`, block-level `let`).
    pub(super) fn binding(&mut self, pair: Pair<'_, Rule>) -> PResult<(Ident, Expr)> {
        let span = self.span(&pair);
        let mut name = None;
        let mut value = None;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::expr => value = Some(self.expr(p)?),
                _ => return Err(self.internal(&p, "a binding")),
            }
        }
        match (name, value) {
            (Some(n), Some(v)) => Ok((n, v)),
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete binding")),
        }
    }
}
