//! The layer-norm passes in plain Rust (the fallback, and the only variant off x86-64).

use super::{NormOps, NormRow, RowStats};

pub(super) static OPS: NormOps = NormOps {
    sum,
    sq_dev_sum,
    normalize,
};

fn sum(x: &[f32]) -> f32 {
    x.iter().sum()
}

fn sq_dev_sum(x: &[f32], mean: f32) -> f32 {
    x.iter().map(|&v| (v - mean) * (v - mean)).sum()
}

/// # Safety
/// The pointer contract of [`NormOps::normalize`].
unsafe fn normalize(r: &NormRow) -> f32 {
    let RowStats { mean, rstd } = r.stats;
    for j in 0..r.n {
        // SAFETY: `j < n`; element `j` of `x` is read before `out`'s (maybe the same) is written.
        unsafe { *r.out.add(j) = (*r.x.add(j) - mean) * rstd * *r.weight.add(j) + *r.bias.add(j) };
    }
    if r.next.is_null() {
        0.0
    } else {
        // SAFETY: a non-null `next` is valid for `n` reads and not written meanwhile.
        sum(unsafe { std::slice::from_raw_parts(r.next, r.n) })
    }
}
