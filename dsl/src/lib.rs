//! The mlc model language: the pest grammar, the AST with source spans, import resolution,
//! diagnostics and the embedded standard library (`dsl/std/*.dsl`).

pub mod ast;
pub mod source;

pub use source::{Diagnostic, FileId, SourceMap, Span};
