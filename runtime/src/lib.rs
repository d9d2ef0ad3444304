//! The mlc runtime.
