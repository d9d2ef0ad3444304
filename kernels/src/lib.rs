//! Hand-written kernels shared by the mlc backends.
//!
//! For now this holds the counter-based random number generator ([`philox`]) whose stream every
//! backend (the reference interpreter, the CPU JIT and the PTX kernels) must reproduce bit for
//! bit.

pub mod philox;

pub use philox::{normal_f32, philox4x32_10, uniform_f32};
