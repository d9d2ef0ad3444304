//! From pest pairs to statements, loop headers and binding patterns.

use pest::iterators::Pair;

use super::Rule;
use super::build::{Builder, PResult, kids};
use crate::ast::*;
use crate::source::Diagnostic;

impl Builder {
    pub(super) fn body(&mut self, pair: Pair<'_, Rule>) -> PResult<Body> {
        let span = self.span(&pair);
        let mut stmts = Vec::new();
        for p in kids(pair) {
            stmts.push(self.stmt(p)?);
        }
        Ok(Body { stmts, span })
    }

    /// `if c { ... } (else if ... | else { ... })?`
    fn if_stmt(&mut self, p: Pair<'_, Rule>) -> PResult<Stmt> {
        let span = self.span(&p);
        let mut it = kids(p).into_iter();
        let (Some(cond), Some(then)) = (it.next(), it.next()) else {
            return Err(Diagnostic::new(span, "internal parser error: incomplete if"));
        };
        let cond = self.expr(cond)?;
        let then = self.body(then)?;
        let otherwise = match it.next() {
            None => None,
            Some(q) if q.as_rule() == Rule::if_stmt => {
                let nested_span = self.span(&q);
                let nested = self.if_stmt(q)?;
                Some(Body {
                    stmts: vec![nested],
                    span: nested_span,
                })
            }
            Some(q) => Some(self.body(q)?),
        };
        Ok(Stmt::If {
            cond,
            then,
            otherwise,
            span,
        })
    }

    fn stmt(&mut self, pair: Pair<'_, Rule>) -> PResult<Stmt> {
        let Some(p) = kids(pair.clone()).into_iter().next() else {
            return Err(self.internal(&pair, "a statement"));
        };
        let span = self.span(&p);
        match p.as_rule() {
            Rule::let_stmt => {
                let mut it = kids(p).into_iter();
                match (it.next(), it.next()) {
                    (Some(pat), Some(value)) => Ok(Stmt::Let {
                        pat: self.pattern(pat)?,
                        value: self.expr(value)?,
                        span,
                    }),
                    _ => Err(Diagnostic::new(span, "internal parser error: incomplete let")),
                }
            }
            Rule::for_stmt => {
                let mut it = kids(p).into_iter();
                match (it.next(), it.next(), it.next()) {
                    (Some(var), Some(range), Some(body)) => {
                        let var = self.ident(var);
                        let (start, end) = self.range(range)?;
                        Ok(Stmt::For {
                            var,
                            start,
                            end,
                            body: self.body(body)?,
                            span,
                        })
                    }
                    _ => Err(Diagnostic::new(span, "internal parser error: incomplete for")),
                }
            }
            Rule::loop_stmt => Ok(Stmt::Loop(self.loop_stmt(p)?)),
            Rule::if_stmt => self.if_stmt(p),
            Rule::next_stmt => {
                let values = kids(p).into_iter().map(|b| self.binding(b)).collect::<PResult<_>>()?;
                Ok(Stmt::Next { values, span })
            }
            Rule::emit_stmt => {
                let Some(b) = kids(p).into_iter().next() else {
                    return Err(Diagnostic::new(span, "internal parser error: incomplete emit"));
                };
                let (name, value) = self.binding(b)?;
                Ok(Stmt::Emit { name, value, span })
            }
            Rule::return_stmt => {
                let mut values = Vec::new();
                for item in kids(p) {
                    match item.as_rule() {
                        Rule::ret_item => values.push(self.ret_item(item)?),
                        Rule::ret_paren => {
                            // `(x = a, ...)`: the first item's name and value are direct children.
                            let mut name = None;
                            for q in kids(item) {
                                match q.as_rule() {
                                    Rule::arg_name => name = self.arg_name(q),
                                    Rule::expr => values.push((name.take(), self.expr(q)?)),
                                    Rule::ret_item => values.push(self.ret_item(q)?),
                                    _ => return Err(self.internal(&q, "a return")),
                                }
                            }
                        }
                        _ => return Err(self.internal(&item, "a return")),
                    }
                }
                Ok(Stmt::Return { values, span })
            }
            _ => Err(self.internal(&p, "a statement")),
        }
    }

    fn ret_item(&mut self, pair: Pair<'_, Rule>) -> PResult<(Option<Ident>, Expr)> {
        let span = self.span(&pair);
        let mut name = None;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::arg_name => name = self.arg_name(p),
                Rule::expr => return Ok((name, self.expr(p)?)),
                _ => return Err(self.internal(&p, "a return value")),
            }
        }
        Err(Diagnostic::new(span, "internal parser error: empty return value"))
    }

    /// The name of `name =` in call arguments and returns.
    pub(super) fn arg_name(&self, pair: Pair<'_, Rule>) -> Option<Ident> {
        pair.into_inner()
            .find(|p| p.as_rule() == Rule::ident)
            .map(|p| self.ident(p))
    }

    fn range(&mut self, pair: Pair<'_, Rule>) -> PResult<(Expr, Expr)> {
        let span = self.span(&pair);
        let mut it = kids(pair).into_iter();
        match (it.next(), it.next()) {
            (Some(a), Some(b)) => Ok((self.expr(a)?, self.expr(b)?)),
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete range")),
        }
    }

    fn loop_stmt(&mut self, pair: Pair<'_, Rule>) -> PResult<LoopStmt> {
        let span = self.span(&pair);
        let (mut var, mut range, mut max, mut carry, mut until, mut body) = (None, None, None, Vec::new(), None, None);
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ident => var = Some(self.ident(p)),
                Rule::loop_range => {
                    let Some(r) = kids(p).into_iter().next() else { continue };
                    range = Some(self.range(r)?);
                }
                Rule::loop_max => max = Some(self.expr_in(p)?),
                Rule::loop_carry => {
                    for b in kids(p) {
                        carry.push(self.binding(b)?);
                    }
                }
                Rule::loop_until => until = Some(self.expr_in(p)?),
                Rule::body => body = Some(self.body(p)?),
                _ => return Err(self.internal(&p, "a loop")),
            }
        }
        match (var, body) {
            (Some(var), Some(body)) => Ok(LoopStmt {
                var,
                range,
                max,
                carry,
                until,
                body,
                span,
            }),
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete loop")),
        }
    }

    fn pattern(&mut self, pair: Pair<'_, Rule>) -> PResult<Pattern> {
        let Some(p) = kids(pair.clone()).into_iter().next() else {
            return Err(self.internal(&pair, "a pattern"));
        };
        let span = self.span(&p);
        match p.as_rule() {
            Rule::ident => Ok(Pattern::Name(self.ident(p))),
            Rule::wild => Ok(Pattern::Wild(span)),
            Rule::tuple_pat => {
                let mut parts = Vec::new();
                let mut trailing = false;
                for q in kids(p) {
                    match q.as_rule() {
                        Rule::pattern => parts.push(self.pattern(q)?),
                        Rule::tcomma => trailing = true,
                        _ => return Err(self.internal(&q, "a pattern")),
                    }
                }
                if parts.len() == 1 && !trailing {
                    // `(a)` is just `a`.
                    return Ok(parts.pop().unwrap_or(Pattern::Wild(span)));
                }
                Ok(Pattern::Tuple(parts, span))
            }
            _ => Err(self.internal(&p, "a pattern")),
        }
    }
}
