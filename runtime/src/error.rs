//! The runtime's error type.

use crate::weights::WeightError;

/// Everything that can go wrong while loading tensors, binding weights or running a graph.
///
/// Op errors carry the op's mnemonic and `at`, the node's origin formatted as
/// `` at `name @ file:line:col` `` (empty when the node has no origin).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file could not be opened, mapped or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A safetensors file is damaged, truncated or not a safetensors file.
    #[error("{path}: {message}")]
    Package { path: String, message: String },

    #[error("`{op}`{at}: result {result} has {value} at element {index} (the first non-finite value of the run)")]
    NonFinite {
        op: &'static str,
        at: String,
        value: String,
        result: usize,
        index: usize,
    },

    #[error("{path}: not a valid safetensors file: {message}")]
    BadFile { path: String, message: String },
    /// A tensor in a file has a dtype mlc does not handle.
    #[error("{path}: tensor `{name}` has dtype {dtype}; mlc supports F32, F16, BF16, I32, I64 and BOOL")]
    UnsupportedDtype { path: String, name: String, dtype: String },
    /// A tensor was looked up by a name the file does not have.
    #[error("{path}: no tensor named `{name}`")]
    NoSuchTensor { path: String, name: String },
    /// Two tensors to save share a name.
    #[error("{path}: two tensors are named `{name}`")]
    DuplicateTensor { path: String, name: String },
    /// A tensor was built from data whose length does not match its shape.
    #[error("tensor of shape {shape:?} needs {expected} elements, got {found}")]
    BadTensor {
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    /// The entry point does not exist.
    #[error("no entry point `{entry}`; the module has: {available}")]
    UnknownEntry { entry: String, available: String },
    /// An input the entry point declares was not given.
    #[error("missing input `{name}`: {expected}")]
    MissingInput { name: String, expected: String },
    /// An input was given that the entry point does not declare (or twice).
    #[error("unexpected input `{name}`; the entry point takes: {expected}")]
    UnexpectedInput { name: String, expected: String },
    /// An input has the wrong dtype or rank, or a wrong static dimension.
    #[error("input `{name}`: expected {expected}, got {found}")]
    InputType {
        name: String,
        expected: String,
        found: String,
    },
    /// Two inputs disagree on the value of a symbolic dimension.
    #[error("input `{name}`: dimension `{symbol}` is {value} here, but input `{bound_by}` bound it to {bound}")]
    DimConflict {
        name: String,
        symbol: String,
        value: i64,
        bound_by: String,
        bound: i64,
    },
    /// A dimension mentions a symbol that no input binds.
    #[error("{context}: dimension symbol `{symbol}` is not bound by any input")]
    UnboundDim { symbol: String, context: String },
    /// A dimension evaluated to a negative size.
    #[error("{context}: dimension `{dim}` evaluates to {value}, a negative size")]
    NegativeDim { dim: String, value: i64, context: String },
    /// An op failed at run time (shapes that do not agree once evaluated, a bad operand).
    #[error("`{op}`{at}: {message}")]
    Op {
        op: &'static str,
        at: String,
        message: String,
    },
    /// A gather, take or scatter index (or an RNG operand) is out of range.
    #[error("`{op}`{at}: index {index} is out of range for axis {axis} of size {size}")]
    IndexOutOfRange {
        op: &'static str,
        at: String,
        index: i64,
        axis: usize,
        size: usize,
    },
    /// Integer division or remainder by zero.
    #[error("`{op}`{at}: integer division by zero")]
    DivisionByZero { op: &'static str, at: String },
    /// A loop's trip count exceeds its declared maximum.
    #[error("`loop`{at}: {trips} trips exceed the maximum of {max}")]
    TooManyTrips { at: String, trips: i64, max: u64 },
    /// A loop's trip count exceeds [`crate::RunOptions::max_loop_trips`].
    #[error(
        "`loop`{at}: {trips} trips exceed the limit of {limit} trips per loop (RunOptions::max_loop_trips, `mlc run --max-loop-trips`)"
    )]
    TripLimit { at: String, trips: i64, limit: u64 },
    /// A run's intermediate buffers would need a larger arena than
    /// [`crate::RunOptions::max_arena_bytes`] allows.
    #[error(
        "`{entry}`: the run needs an arena of {bytes} bytes, more than the limit of {limit} (RunOptions::max_arena_bytes, `mlc run --max-arena-bytes`)"
    )]
    ArenaTooLarge { entry: String, bytes: usize, limit: usize },
    /// An op produced a value that disagrees with its declared result type.
    #[error("`{op}`{at}: result {index} is {found}, but its type is {expected}")]
    ResultType {
        op: &'static str,
        at: String,
        index: usize,
        /// The declared type and its evaluated shape: `f32[B, 3] = [2, 3]`.
        expected: String,
        found: String,
    },
    /// A value would exceed [`crate::RunOptions::max_elements`] (counting axes of size 0 as 1,
    /// so that empty tensors with huge axes are refused too).
    #[error("`{op}`{at}: a value of shape {shape:?} exceeds the limit of {limit} elements")]
    TooLarge {
        op: &'static str,
        at: String,
        shape: Vec<usize>,
        limit: usize,
    },
    /// A `param` node names a weight that was not bound.
    #[error("`param`{at}: no weight named `{name}` is bound")]
    MissingWeight { name: String, at: String },
    /// The graph is not acyclic.
    #[error("the graph has a cycle through node {0}")]
    Cycle(usize),
    /// An execution plan is malformed (a buffer or kernel out of range, a step that writes a
    /// read-only buffer, a loop whose body does not fit it), or could not be built or compiled.
    #[error("plan: {message}")]
    Plan { message: String },
    /// Weight binding failed; every problem is listed.
    #[error("{}", join_weight_errors(.0))]
    Weights(Vec<WeightError>),
    /// A GGUF file is damaged, truncated or malformed, or a metadata key asked for is missing
    /// or of the wrong type; the message names the key or tensor.
    #[error("{path}: {message}")]
    Gguf { path: String, message: String },
    /// A GGUF tensor has a ggml type mlc does not dequantise.
    #[error("{path}: tensor `{name}` has type {ggml_type}; mlc supports F32, F16, BF16, Q4_0, Q4_1, Q8_0")]
    GgufUnsupportedType {
        path: String,
        name: String,
        ggml_type: String,
    },
}

fn join_weight_errors(errors: &[WeightError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}

impl From<Vec<WeightError>> for RuntimeError {
    fn from(errors: Vec<WeightError>) -> RuntimeError {
        RuntimeError::Weights(errors)
    }
}
