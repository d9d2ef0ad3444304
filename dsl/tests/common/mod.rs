//! Helpers shared by the integration tests.
#![allow(dead_code)]

use mlc_dsl::ast::*;
use mlc_dsl::{Diagnostic, SourceMap, parse_file};

/// Parses `text` as `t.dsl`.
pub fn parse(text: &str) -> Result<File, (SourceMap, Diagnostic)> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.dsl", None, text);
    parse_file(&sources, id).map_err(|d| (sources, d))
}

/// Parses `text`, panicking with the rendered diagnostic on error.
pub fn parse_ok(text: &str) -> File {
    match parse(text) {
        Ok(f) => f,
        Err((sources, d)) => panic!("{}", d.render(&sources)),
    }
}

/// The rendered diagnostic for `text`, which must not parse.
pub fn parse_err(text: &str) -> String {
    match parse(text) {
        Ok(f) => panic!("parsed, expected an error: {f:?}"),
        Err((sources, d)) => d.render(&sources),
    }
}

/// The expression `e` in `fn t() = e`.
pub fn expr(e: &str) -> Expr {
    let file = parse_ok(&format!("fn t() = {e}"));
    match &file.items[0] {
        Item::Fn(f) => match &f.body.stmts[0] {
            Stmt::Return { values, .. } => values[0].1.clone(),
            s => panic!("not a return: {s:?}"),
        },
        i => panic!("not a fn: {i:?}"),
    }
}

/// An S-expression for an expression, to check its shape compactly.
pub fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => format!("{v:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::NoneLit => "None".into(),
        ExprKind::Name(n) => n.clone(),
        ExprKind::List(items) => format!("[{}]", list(items)),
        ExprKind::Tuple(items) => format!("(tuple {})", list(items)),
        ExprKind::Unary(op, x) => format!("({} {})", if *op == UnOp::Neg { "neg" } else { "not" }, sexpr(x)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), sexpr(a), sexpr(b)),
        ExprKind::Call { callee, args } => {
            let args: Vec<String> = args
                .iter()
                .map(|a| match &a.name {
                    Some(n) => format!("{}={}", n.name, sexpr(&a.value)),
                    None => sexpr(&a.value),
                })
                .collect();
            format!(
                "(call {}{})",
                sexpr(callee),
                args.iter().map(|a| format!(" {a}")).collect::<String>()
            )
        }
        ExprKind::Field(x, f) => format!("(. {} {})", sexpr(x), f.name),
        ExprKind::Index(x, items) => {
            let items: Vec<String> = items.iter().map(index_item).collect();
            format!("(index {} {})", sexpr(x), items.join(" "))
        }
        ExprKind::If { cond, then, otherwise } => {
            format!("(if {} {} {})", sexpr(cond), sexpr(then), sexpr(otherwise))
        }
    }
}

fn list(items: &[Expr]) -> String {
    items.iter().map(sexpr).collect::<Vec<_>>().join(" ")
}

fn opt(e: &Option<Expr>) -> String {
    e.as_ref().map(sexpr).unwrap_or_default()
}

fn index_item(i: &IndexItem) -> String {
    match i {
        IndexItem::Expr(e) => sexpr(e),
        IndexItem::Slice {
            start, end, step: None, ..
        } => format!("{}:{}", opt(start), opt(end)),
        IndexItem::Slice {
            start,
            end,
            step: Some(s),
            ..
        } => format!("{}:{}:{}", opt(start), opt(end), sexpr(s)),
        IndexItem::NewAxis(_) => "new".into(),
        IndexItem::Ellipsis(_) => "...".into(),
    }
}
