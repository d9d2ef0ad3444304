//! The mlc model language: the pest grammar, the AST with source spans, import resolution,
//! diagnostics and the embedded standard library (`dsl/std/*.dsl`).

pub mod ast;
pub mod loader;
pub mod parser;
pub mod source;

pub use loader::{ItemRef, LoadError, Program, STD_MODULES, load_file, load_source};
pub use parser::parse_file;
pub use source::{Diagnostic, FileId, SourceMap, Span};
