//! The mlc runtime: host tensors, safetensors weights, and the reference interpreter of the
//! Graph IR.
//!
//! ```no_run
//! # fn main() -> Result<(), mlc_runtime::RuntimeError> {
//! # let module = mlc_ir::Module::default();
//! use mlc_runtime::{RunOptions, Tensor, Weights, interp, safetensors_io};
//! let file = safetensors_io::load("model.safetensors")?;
//! let weights = Weights::bind(&module, &file)?;
//! let inputs = vec![("x".to_string(), Tensor::from_f32(&[2, 3], vec![0.0; 6]))];
//! let outputs = interp::run(&module, "forward", &weights, &inputs, &RunOptions::default())?;
//! for (name, t) in &outputs {
//!     println!("{name}: {}", t.summary());
//! }
//! # Ok(())
//! # }
//! ```

pub mod cpu;
pub mod error;
pub mod gguf;
pub mod interp;
pub mod model;
pub mod package;
pub mod safetensors_io;
pub mod tensor;
pub mod weights;

pub use error::RuntimeError;
pub use gguf::GgufFile;
pub use interp::{RunOptions, run};
pub use mlc_kernels::{QuantFormat, QuantMatrix};
pub use model::{Model, Session};
pub use safetensors_io::TensorFile;
pub use tensor::{Data, Tensor};
pub use weights::{WeightError, Weights, init_inputs, init_inputs_with_ranges, init_weights};
