//! Unit tests of the reference interpreter, one module per op family. Expected values are
//! computed by hand.

mod common;
mod control;
mod elementwise;
mod index;
mod inputs;
mod malformed;
mod matmul;
mod movement;
mod reduce;
mod source;
mod weights;
