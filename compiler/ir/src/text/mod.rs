//! The IR text form: a deterministic, human-readable printing of a [`Module`](crate::Module) and
//! a parser that reads it back.
//!
//! `print → parse → print` is the identity, and `parse(print(m))` equals `m` structurally. Nodes
//! are numbered densely in the deterministic topological order of
//! [`Graph::topo_order`](crate::Graph::topo_order) (the numbering of
//! [`Graph::compacted`](crate::Graph::compacted)); every graph, and every loop body, numbers its
//! own nodes from `%0`.
//!
//! ```text
//! module Mlp
//!
//! param w: f32[4, 8] init normal(0.08)
//! param b: f32[8] init zeros
//!
//! func forward(x: f32[B, 4]) -> (y: f32[B, 8]) {
//!   %0 = input "x" : f32[B, 4]
//!   %1 = param "w" : f32[4, 8]                           # w @ mlp.dsl:3:3
//!   %2 = matmul %0, %1 : f32[B, 8]                       # h @ mlp.dsl:7:5
//!   %3 = param "b" : f32[8]
//!   %4 = add %2, %3 : f32[B, 8]
//!   %5:2 = topk(k=3, axis=1, largest=true) %4 : f32[B, 3], i64[B, 3]
//!   %6 = const f32[3] [0.1, -inf, NaN] : f32[3]
//!   %7:2 = loop(trips=N, max=64, carried=1, stop=true, emit=1) %4 {
//!     ^(i: i64[], h: f32[B, 8])
//!     %0 = input "i" : i64[]
//!     ...
//!     yield h = %3, stop = %5, e = %4
//!   } : f32[B, 8], f32[N, B, 8]
//!   return y = %7
//! }
//! ```
//!
//! Results of multi-result nodes are `%5#1` (`%5` is `%5#0`). A `#` comment right after a node,
//! on its line, is the node's [`Origin`](crate::Origin) (`name @ file:line:col`); other comments
//! (`#` or `//`) are ignored. Names that are not identifiers (`[A-Za-z_][A-Za-z0-9_.]*`) are
//! quoted. Float attributes print as Rust's shortest round-trip form (`inf`, `-inf`, `NaN`);
//! elements of `f32`/`f16`/`bf16` literals print as the shortest `f32` form, and a value that is
//! not exactly an `f32` (which the verifier rejects) carries an `f64` suffix so it still
//! round-trips.

mod attrs;
mod cursor;
mod parse;
mod print;

pub use parse::parse_module;
pub use print::{print_graph, print_module};

pub(crate) use print::{Numbering, body_key, op_head};

/// A syntax or name-resolution error in IR text, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// True for names printed without quotes: `[A-Za-z_][A-Za-z0-9_.]*`.
fn is_bare_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// A quoted string with `\\`, `\"`, `\n`, `\r`, `\t` and `\u{..}` escapes.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name as printed: bare when it is an identifier, quoted otherwise.
fn name(s: &str) -> String {
    if is_bare_name(s) { s.to_string() } else { quote(s) }
}

/// An `f64` attribute: Rust's shortest round-trip form (`0.5`, `1e-7`, `inf`, `-inf`, `NaN`).
fn float(v: f64) -> String {
    format!("{v:?}")
}

/// An element of a float literal of a float dtype: the shortest `f32` form when the value is
/// exactly an `f32` (NaN included), otherwise the `f64` form with an `f64` suffix.
fn f32_element(v: f64) -> String {
    if v.is_nan() || (v as f32) as f64 == v {
        format!("{:?}", v as f32)
    } else {
        format!("{v:?}f64")
    }
}
