//! The compile pipeline as one call: load the `.dsl` file with its imports, lower the model,
//! verify, and run the standard passes.

use std::path::Path;

use mlc_dsl::source::render_all;
use mlc_dsl::{LoadError, Program, SourceMap};
use mlc_ir::Module;

use crate::lower::{LowerOptions, lower_program};

/// Why a compilation failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The root file could not be read.
    #[error("{0}")]
    Io(String),
    /// Errors in the user's program, rendered as `file:line:col: error: ...` blocks.
    #[error("{rendered}")]
    Program { rendered: String, count: usize },
    /// The compiler produced an invalid graph: a bug in mlc.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A loaded and lowered program.
pub struct Compiled {
    pub program: Program,
    /// The module straight out of lowering, before any pass.
    pub module: Module,
}

/// Loads and lowers `path`, and verifies the result.
pub fn compile_file(path: &Path, opts: &LowerOptions) -> Result<Compiled, CompileError> {
    lower_loaded(load_file(path)?, opts)
}

/// Parses `path` and the files it imports (the first half of [`compile_file`]).
pub fn load_file(path: &Path) -> Result<Program, CompileError> {
    mlc_dsl::load_file(path).map_err(load_error)
}

/// Loads and lowers a program given as text (`name` is shown in diagnostics).
pub fn compile_source(name: &str, text: &str, opts: &LowerOptions) -> Result<Compiled, CompileError> {
    let program = mlc_dsl::load_source(name, text).map_err(load_error)?;
    lower_loaded(program, opts)
}

/// Runs the standard pass pipeline (matvec, canonicalize, const-fold, cse, dce) over a lowered module
/// and verifies the result: what `mlc build` and `mlc run` do before planning.
pub fn optimize(module: &mut Module) -> Result<(), CompileError> {
    mlc_ir::passes::run_pipeline(module, None, |_, _| {}).map_err(|e| CompileError::Internal(e.to_string()))?;
    mlc_ir::verify_module(module).map_err(|errs| {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        CompileError::Internal(format!(
            "the graph does not verify after the pass pipeline:\n{}",
            msgs.join("\n")
        ))
    })
}

/// [`compile_source`], then [`optimize`]: the module a runtime `Model` is built from.
pub fn compile_source_optimized(name: &str, text: &str, opts: &LowerOptions) -> Result<Module, CompileError> {
    let mut module = compile_source(name, text, opts)?.module;
    optimize(&mut module)?;
    Ok(module)
}

/// Lowers a loaded program and verifies the result (the second half of [`compile_file`]).
pub fn lower_loaded(program: Program, opts: &LowerOptions) -> Result<Compiled, CompileError> {
    let module = lower_program(&program, opts).map_err(|diags| program_error(&program.sources, &diags))?;
    if let Err(errs) = mlc_ir::verify_module(&module) {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        return Err(CompileError::Internal(format!(
            "the lowered graph does not verify:\n{}",
            msgs.join("\n")
        )));
    }
    Ok(Compiled { program, module })
}

fn program_error(sources: &SourceMap, diags: &[mlc_dsl::Diagnostic]) -> CompileError {
    CompileError::Program {
        rendered: render_all(diags, sources),
        count: diags.len(),
    }
}

fn load_error(e: LoadError) -> CompileError {
    match e {
        LoadError::Io { .. } => CompileError::Io(e.render()),
        other => CompileError::Program {
            rendered: other.render(),
            count: other.diagnostics().len().max(1),
        },
    }
}
