//! The row primitives in plain Rust with the standard library's `exp` (the fallback, and the
//! only variant off x86-64).

use super::{ExpSum, RowOps};

pub(crate) static OPS: RowOps = RowOps { max, exp_sum, scale };

fn max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &y| m.max(y))
}

/// [`RowOps::exp_sum`](super::RowOps) with the standard library's `exp`.
///
/// # Safety
/// The pointer contract of `RowOps::exp_sum`.
unsafe fn exp_sum(x: *const f32, out: *mut f32, n: usize, m: f32, next: *const f32) -> ExpSum {
    let mut sum = 0.0;
    for j in 0..n {
        // SAFETY: `j < n`; element `j` of `x` is read before `out`'s (maybe the same) is written.
        unsafe {
            let y = (*x.add(j) - m).exp();
            *out.add(j) = y;
            sum += y;
        }
    }
    let next_max = if next.is_null() {
        f32::NEG_INFINITY
    } else {
        // SAFETY: a non-null `next` is valid for `n` reads and not written meanwhile.
        max(unsafe { std::slice::from_raw_parts(next, n) })
    };
    ExpSum { sum, next_max }
}

fn scale(x: &mut [f32], a: f32) {
    for y in x {
        *y *= a;
    }
}
