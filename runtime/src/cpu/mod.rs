//! The CPU backend: kernels compiled by the Cranelift JIT ([`jit`]) and the executor of
//! execution plans ([`Program`]).
//!
//! A [`Program`] is a checked [`mlc_ir::ModulePlan`] with its kernels compiled and its
//! constants built; it is immutable, so any number of runs share it. A run binds the entry's
//! inputs (as the interpreter does: [`crate::interp`]'s checks), evaluates every buffer's shape
//! with the bindings, then steps through the plan over a table of buffers:
//!
//! - `Step::Kernel` evaluates the kernel's dims, passes the buffers' base addresses and calls
//!   the compiled kernel over `0..extent` of its parallel index, split into ranges over the
//!   session's thread pool when there is enough work (a kernel that is a row softmax or layer
//!   norm runs `mlc_kernels::softmax` or `mlc_kernels::norm` over the ranges instead);
//! - `Step::MatMul` runs `mlc_kernels::gemm_batched` for `f32` (broadcast batch axes as zero
//!   strides, a transposed `B` read in place), the reference product for other dtypes;
//! - `Step::Attention` runs `mlc_kernels::attention` (blocked online softmax, no score matrix)
//!   on strided views of its buffers, masks broadcast with zero strides;
//! - `Step::Op` runs one Graph IR op through [`crate::interp::eval_op`], except `concat`, which
//!   copies its inputs straight into its output's place in the arena (`concat.rs`);
//! - `Step::Loop` runs its body plan once per iteration (the semantics of `mlc_ir::LoopOp`).
//!
//! Buffers that kernels, `f32` products and loops write live in the session's [`Arena`]: one
//! allocation, laid out by `mlc_sched::memory` (liveness, in-place reuse) once per set of dim
//! bindings and reused by every run; loop bodies get two regions used by alternate iterations
//! (see [`arena`]). Inputs are read in place from the caller's tensors; weights, constants and
//! results of other `Op` steps are shared host tensors; the entry's outputs are written into fresh
//! allocations that become the returned tensors. Every buffer always holds exactly its declared
//! dtype and evaluated shape, which is what makes handing raw addresses to kernels sound.
//!
//! One difference from the interpreter remains: an integer division or remainder by zero
//! inside a generated kernel gives 0 instead of [`crate::RuntimeError::DivisionByZero`].

pub mod aot;
pub mod jit;

pub mod arena;
mod attention;
mod buffers;
mod concat;
mod control;
mod exec;
mod kernels;
mod matmul;
mod parallel;
mod prepare;
mod storage;

pub use arena::Arena;
pub use exec::{Program, default_threads};
