//! From pest pairs to expressions. Operator precedence and associativity are fixed by the
//! grammar's layering (`or_expr` > `and_expr` > `cmp_expr` > ...); here the chains are folded.

use pest::iterators::Pair;

use super::build::{Builder, PResult, kids};
use super::{MAX_NESTING, Rule};
use crate::ast::*;
use crate::source::{Diagnostic, Span};

impl Builder {
    /// An expression from any expression-level pair (`expr`, `or_expr`, ..., an atom).
    pub(super) fn expr(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        if self.depth >= MAX_NESTING {
            return Err(Diagnostic::new(self.span(&pair), "expression is nested too deeply")
                .note(format!("at most {MAX_NESTING} levels of nesting are allowed")));
        }
        self.depth += 1;
        let result = self.expr_level(pair);
        self.depth -= 1;
        result
    }

    /// The first `expr` child of `pair` (e.g. of `param_init`, `cond`, `loop_max`).
    pub(super) fn expr_in(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&pair);
        match pair.into_inner().find(|p| p.as_rule() == Rule::expr) {
            Some(e) => self.expr(e),
            None => Err(Diagnostic::new(span, "internal parser error: missing expression")),
        }
    }

    /// All `expr` children of `pair`, in order.
    pub(super) fn exprs(&mut self, pair: Pair<'_, Rule>) -> PResult<Vec<Expr>> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::expr)
            .map(|p| self.expr(p))
            .collect()
    }

    fn expr_level(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        // Skip the layers that only wrap one operand.
        let mut pair = pair;
        loop {
            let rule = pair.as_rule();
            let wrapper = matches!(
                rule,
                Rule::expr
                    | Rule::or_expr
                    | Rule::and_expr
                    | Rule::cmp_expr
                    | Rule::add_expr
                    | Rule::mul_expr
                    | Rule::unary
                    | Rule::power
                    | Rule::postfix
            );
            if !wrapper {
                break;
            }
            let mut inner = pair.clone().into_inner();
            match (inner.next(), inner.next()) {
                (Some(only), None) => pair = only,
                _ => break,
            }
        }
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::if_expr => self.if_expr(pair),
            Rule::or_expr | Rule::and_expr | Rule::add_expr | Rule::mul_expr => self.binary_chain(pair),
            Rule::cmp_expr => self.cmp_chain(pair),
            Rule::unary => self.unary(pair),
            Rule::power => {
                let mut it = kids(pair).into_iter();
                match (it.next(), it.next(), it.next()) {
                    (Some(base), Some(_), Some(exp)) => {
                        let (base, exp) = (self.expr(base)?, self.expr(exp)?);
                        Ok(Expr {
                            kind: ExprKind::Binary(BinOp::Pow, Box::new(base), Box::new(exp)),
                            span,
                        })
                    }
                    _ => Err(Diagnostic::new(span, "internal parser error: incomplete power")),
                }
            }
            Rule::postfix => self.postfix(pair),
            Rule::int => match pair.as_str().parse::<i64>() {
                Ok(v) => Ok(Expr {
                    kind: ExprKind::Int(v),
                    span,
                }),
                Err(_) => Err(
                    Diagnostic::new(span, format!("integer literal `{}` is too large", pair.as_str()))
                        .note(format!("the largest integer is {}", i64::MAX)),
                ),
            },
            Rule::float => match pair.as_str().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Expr {
                    kind: ExprKind::Float(v),
                    span,
                }),
                _ => Err(Diagnostic::new(
                    span,
                    format!("float literal `{}` is out of range", pair.as_str()),
                )),
            },
            Rule::lit_true => Ok(Expr {
                kind: ExprKind::Bool(true),
                span,
            }),
            Rule::lit_false => Ok(Expr {
                kind: ExprKind::Bool(false),
                span,
            }),
            Rule::lit_none => Ok(Expr {
                kind: ExprKind::NoneLit,
                span,
            }),
            Rule::ident => Ok(Expr {
                kind: ExprKind::Name(pair.as_str().to_string()),
                span,
            }),
            Rule::paren => self.paren(pair),
            Rule::list => Ok(Expr {
                kind: ExprKind::List(self.exprs(pair)?),
                span,
            }),
            _ => Err(self.internal(&pair, "an expression")),
        }
    }

    fn if_expr(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&pair);
        let mut it = kids(pair).into_iter();
        match (it.next(), it.next(), it.next()) {
            (Some(c), Some(t), Some(e)) => {
                let cond = Box::new(self.expr(c)?);
                let then = Box::new(self.expr(t)?);
                let otherwise = Box::new(match e.as_rule() {
                    Rule::else_arm => self.expr_in(e)?,
                    _ => self.expr(e)?,
                });
                Ok(Expr {
                    kind: ExprKind::If { cond, then, otherwise },
                    span,
                })
            }
            _ => Err(Diagnostic::new(span, "internal parser error: incomplete if")),
        }
    }

    /// `a op b op c ...`, left associative.
    fn binary_chain(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let mut it = kids(pair).into_iter();
        let Some(first) = it.next() else {
            return Err(Diagnostic::new(
                Span::new(self.file, 0, 0),
                "internal parser error: empty chain",
            ));
        };
        let mut lhs = self.expr(first)?;
        while let (Some(op), Some(rhs)) = (it.next(), it.next()) {
            let op = self.bin_op(&op)?;
            let rhs = self.expr(rhs)?;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
        Ok(lhs)
    }

    /// Comparisons do not chain: `a < b < c` is an error.
    fn cmp_chain(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let parts = kids(pair.clone());
        if parts.len() > 3 {
            return Err(
                Diagnostic::new(self.span(&parts[3]), "comparison operators cannot be chained")
                    .note("use parentheses, or combine two comparisons with `&`"),
            );
        }
        self.binary_chain(pair)
    }

    fn bin_op(&self, op: &Pair<'_, Rule>) -> PResult<BinOp> {
        Ok(match op.as_str() {
            "|" => BinOp::Or,
            "&" => BinOp::And,
            "==" => BinOp::Eq,
            "!=" => BinOp::Ne,
            "<" => BinOp::Lt,
            "<=" => BinOp::Le,
            ">" => BinOp::Gt,
            ">=" => BinOp::Ge,
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "%" => BinOp::Rem,
            "@" => BinOp::MatMul,
            "**" => BinOp::Pow,
            _ => return Err(self.internal(op, "an operator")),
        })
    }

    /// `-x`, `!x`, `--x`: prefix operators apply right to left.
    fn unary(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let mut parts = kids(pair);
        let Some(operand) = parts.pop() else {
            return Err(Diagnostic::new(
                Span::new(self.file, 0, 0),
                "internal parser error: empty unary",
            ));
        };
        let mut e = self.expr(operand)?;
        for op in parts.into_iter().rev() {
            let un = if op.as_str() == "!" { UnOp::Not } else { UnOp::Neg };
            let span = self.span(&op).to(e.span);
            e = Expr {
                kind: ExprKind::Unary(un, Box::new(e)),
                span,
            };
        }
        Ok(e)
    }

    /// An atom followed by calls, indexing and field accesses, applied left to right.
    fn postfix(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let mut it = kids(pair).into_iter();
        let Some(atom) = it.next() else {
            return Err(Diagnostic::new(
                Span::new(self.file, 0, 0),
                "internal parser error: empty postfix",
            ));
        };
        let mut e = self.expr(atom)?;
        for suffix in it {
            let span = e.span.to(self.span(&suffix));
            let kind = match suffix.as_rule() {
                Rule::call_args => ExprKind::Call {
                    callee: Box::new(e),
                    args: self.call_args(suffix)?,
                },
                Rule::index => {
                    let items = kids(suffix)
                        .into_iter()
                        .map(|i| self.index_item(i))
                        .collect::<PResult<_>>()?;
                    ExprKind::Index(Box::new(e), items)
                }
                Rule::field => {
                    let Some(name) = kids(suffix.clone()).into_iter().next() else {
                        return Err(self.internal(&suffix, "a field"));
                    };
                    ExprKind::Field(Box::new(e), self.ident(name))
                }
                _ => return Err(self.internal(&suffix, "a postfix operator")),
            };
            e = Expr { kind, span };
        }
        Ok(e)
    }

    /// `(a)` is `a` (with the parentheses in its span); `(a,)` and `(a, b)` are tuples.
    fn paren(&mut self, pair: Pair<'_, Rule>) -> PResult<Expr> {
        let span = self.span(&pair);
        let mut items = Vec::new();
        let mut trailing = false;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::expr => items.push(self.expr(p)?),
                Rule::tcomma => trailing = true,
                _ => return Err(self.internal(&p, "parentheses")),
            }
        }
        if items.len() == 1
            && !trailing
            && let Some(mut e) = items.pop()
        {
            e.span = span;
            return Ok(e);
        }
        Ok(Expr {
            kind: ExprKind::Tuple(items),
            span,
        })
    }

    /// `(a, name = b)`.
    pub(super) fn call_args(&mut self, pair: Pair<'_, Rule>) -> PResult<Vec<Arg>> {
        let mut args = Vec::new();
        for arg in kids(pair) {
            let span = self.span(&arg);
            let mut name = None;
            let mut value = None;
            for p in kids(arg) {
                match p.as_rule() {
                    Rule::arg_name => name = self.arg_name(p),
                    Rule::expr => value = Some(self.expr(p)?),
                    _ => return Err(self.internal(&p, "an argument")),
                }
            }
            let value = value.ok_or_else(|| Diagnostic::new(span, "internal parser error: empty argument"))?;
            args.push(Arg { name, value });
        }
        Ok(args)
    }

    fn index_item(&mut self, pair: Pair<'_, Rule>) -> PResult<IndexItem> {
        let span = self.span(&pair);
        let mut start = None;
        let mut slice = None;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ellipsis => return Ok(IndexItem::Ellipsis(span)),
                Rule::new_axis => {
                    // The span of `None` alone, without the whitespace before the lookahead.
                    let none = p.into_inner().next().map_or(span, |n| self.span(&n));
                    return Ok(IndexItem::NewAxis(none));
                }
                Rule::expr => start = Some(self.expr(p)?),
                Rule::slice_tail => {
                    let (mut end, mut step) = (None, None);
                    for q in kids(p) {
                        match q.as_rule() {
                            Rule::slice_end => end = Some(self.expr_in(q)?),
                            Rule::slice_step => step = Some(self.expr_in(q)?),
                            _ => return Err(self.internal(&q, "a slice")),
                        }
                    }
                    slice = Some((end, step));
                }
                _ => return Err(self.internal(&p, "an index")),
            }
        }
        match (start, slice) {
            (start, Some((end, step))) => Ok(IndexItem::Slice { start, end, step, span }),
            (Some(e), None) => Ok(IndexItem::Expr(e)),
            (None, None) => Err(Diagnostic::new(span, "internal parser error: empty index")),
        }
    }
}
