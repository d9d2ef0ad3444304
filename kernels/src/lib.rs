//! Hand-written kernels shared by the mlc backends.
