//! Fusion and scheduling: turns each entry point's Graph IR into an execution plan
//! ([`mlc_ir::plan::FunctionPlan`]) whose compute steps are Kernel IR functions.
//!
//! The rules, in order of importance:
//! - **Elementwise ops fuse.** Unary, binary, select, cast, and the movement ops (reshape,
//!   permute, expand, slice) never get a buffer of their own unless something forces one; each
//!   materialised value's kernel computes its whole expression tree element by element, with
//!   movement ops turned into index arithmetic on the loads.
//! - **Elementwise ops fuse into reductions.** A reduction's kernel evaluates its input
//!   expression inside the reduction loop, so `sum(exp(x - m))` reads `x` once.
//! - **A value gets a buffer** when it is a graph input, weight, output, a non-scalar constant,
//!   the result of a reduction, matrix product, loop or of an op without generated code yet, an
//!   operand of one of those, or when several consumers use it (computing it once beats
//!   recomputing it per consumer — except pure re-indexings of a buffer, which are free).
//! - **Matrix products** become library calls; `x @ transpose(w)` reads `w` transposed in place,
//!   and a kernel that only adds a bias, applies an activation or adds a residual to a product
//!   becomes the product's epilogue; a bias and residual a larger kernel adds wherever it reads
//!   the product move into the product (`epilogue.rs`).
//! - **Attention** composed as `std.attention.attention` does (scores, masks, softmax, product
//!   with the values) becomes one attention step that never builds the score matrix
//!   (`attention.rs`); anything that does not match exactly keeps the generic path.
//! - **Everything else** (gather, scatter, top-k, ... and f16/bf16 arithmetic) runs through the
//!   runtime's reference implementation of the op, one step each, until it gets generated code.

mod attention;
mod classify;
mod epilogue;
mod kernel_gen;
pub mod memory;
mod planner;

pub use planner::plan_module;

/// A graph the scheduler cannot plan: a bug upstream (the verifier accepts every graph the
/// scheduler is given in normal use).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("scheduling `{function}`: {message}")]
pub struct SchedError {
    pub function: String,
    pub message: String,
}
