//! Hand-written kernels shared by the mlc backends.
//!
//! - [`philox`]: the counter-based random number generator whose stream every backend (the
//!   reference interpreter, the CPU JIT and the PTX kernels) must reproduce bit for bit.
//! - [`gemm`](mod@gemm): single-precision matrix multiplication with AVX-512 / AVX2+FMA / portable
//!   micro-kernels chosen at run time, prepacked weights, fused epilogues, batched and skinny
//!   (batch-1) shapes, and products with block-quantised (GGUF `Q8_0`, `Q4_1`) weights.
//! - [`attention`]: blocked online-softmax attention (AVX2+FMA or portable) with every mask of
//!   `std.attention`, grouped-query heads and strided views; the score matrix is never built.
//! - [`softmax`]: softmax over the rows of a matrix (AVX-512, AVX2+FMA or portable), and the
//!   row primitives the attention kernel's online softmax shares.
//! - [`norm`](mod@norm): layer normalisation over the rows of a matrix (AVX2+FMA or portable).
//! - [`memory`]: huge-page backing for large buffers.
//! - [`threadpool`]: the persistent thread pool the kernels split their work over; the number of
//!   threads is a run-time setting.

pub mod attention;
pub mod gemm;
pub mod memory;
pub mod norm;
pub mod philox;
pub mod softmax;
pub mod threadpool;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use gemm::{
    Activation, BatchMatMut, BatchMatRef, Epilogue, GemmOpts, KernelVariant, MatMut, MatRef, PackedB, QuantFormat,
    QuantMatrix, Residual, gemm, gemm_batched, gemm_prepacked, gemm_quantized,
};
pub use philox::{normal_f32, philox4x32_10, uniform_f32};
pub use threadpool::{ThreadPool, num_threads, set_num_threads};
