//! The parser: the pest grammar (`src/grammar.pest`) and the conversion of its parse tree into
//! the [`ast`](crate::ast) types, with spans on every node.
//!
//! Syntax errors become a [`Diagnostic`] at the offending token with a friendly message
//! (`unexpected `)``, `unexpected end of file`, a note listing what was expected). The parser never
//! panics: deep nesting and oversized literals are reported as diagnostics too.

mod build;
mod errors;
mod expr;
mod stmt;

use pest::Parser as _;

use crate::ast;
use crate::source::{Diagnostic, FileId, SourceMap};

pub use errors::RESERVED_WORDS;
use grammar::{DslParser, Rule};

/// The generated parser, kept private so that the grammar's rule names stay an implementation
/// detail.
mod grammar {
    /// The pest parser generated from `src/grammar.pest` (the path is relative to `src/`).
    #[derive(pest_derive::Parser)]
    #[grammar = "grammar.pest"]
    pub struct DslParser;
}

/// How deeply expressions may nest (parentheses, calls, brackets) before the parser refuses.
pub const MAX_NESTING: usize = 200;

/// Parses the text of `file` (held in `sources`) into an [`ast::File`].
pub fn parse_file(sources: &SourceMap, file: FileId) -> Result<ast::File, Diagnostic> {
    parse_text(&sources.file(file).text, file)
}

/// Parses `text` as the contents of `file`; spans point into `text`.
pub fn parse_text(text: &str, file: FileId) -> Result<ast::File, Diagnostic> {
    let mut pairs = DslParser::parse(Rule::file, text).map_err(|e| errors::syntax_error(text, file, e))?;
    let Some(root) = pairs.next() else {
        return Ok(ast::File { items: Vec::new() });
    };
    build::Builder::new(file).file(root)
}
