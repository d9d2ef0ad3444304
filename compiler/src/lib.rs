//! The mlc compiler.
