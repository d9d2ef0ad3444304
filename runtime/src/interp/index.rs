//! Indexing ops: gather, take, scatter, dynamic slice and dynamic update slice.

use mlc_ir::Dim;

use crate::error::RuntimeError;
use crate::tensor::{Data, Tensor, shape_numel};

use super::NodeCx;
use super::layout::{
    check_axis, concat_data, for_each_index, pick, pick_data, same_dtype, scalar_int, split_at_axis, strides,
};

/// Reads the indices, checking each lies in `[0, size)` of `axis`.
fn indices(cx: &NodeCx, idx: &Tensor, axis: usize, size: usize) -> Result<Vec<usize>, RuntimeError> {
    if !idx.dtype().is_int() {
        return Err(cx.err(format!("indices must be i32 or i64, got {}", idx.type_string())));
    }
    idx.to_i64_vec()
        .into_iter()
        .map(|v| {
            usize::try_from(v)
                .ok()
                .filter(|&u| u < size)
                .ok_or_else(|| cx.index_err(v, axis, size))
        })
        .collect()
}

/// Checks that `idx` (or an update) has the rank of `x` and its size on every axis but `axis`.
fn check_matches(cx: &NodeCx, what: &str, x: &Tensor, other: &Tensor, axis: usize) -> Result<(), RuntimeError> {
    let ok = other.rank() == x.rank() && (0..x.rank()).all(|a| a == axis || other.shape()[a] == x.shape()[a]);
    if !ok {
        return Err(cx.err(format!(
            "{what} {} must match {} on every axis but {axis}",
            other.type_string(),
            x.type_string()
        )));
    }
    Ok(())
}

/// Flat positions in `x` addressed by each element of `idx` (take along `axis`).
fn along_axis(cx: &NodeCx, axis: usize, x: &Tensor, idx: &Tensor) -> Result<Vec<usize>, RuntimeError> {
    check_axis(cx, axis, x)?;
    check_matches(cx, "indices", x, idx, axis)?;
    let values = indices(cx, idx, axis, x.shape()[axis])?;
    let st = strides(x.shape());
    let mut out = Vec::with_capacity(values.len());
    for_each_index(idx.shape(), |flat, p| {
        let pos: usize = p
            .iter()
            .enumerate()
            .map(|(a, &v)| if a == axis { values[flat] } else { v } * st[a])
            .sum();
        out.push(pos);
    });
    Ok(out)
}

/// `out[p] = x[p with p[axis] = idx[p]]`; the result has the shape of `idx`.
pub fn gather(cx: &NodeCx, axis: usize, x: &Tensor, idx: &Tensor) -> Result<Tensor, RuntimeError> {
    let pos = along_axis(cx, axis, x, idx)?;
    pick(cx, x, &pos, idx.shape().to_vec())
}

/// Index select: `x.shape[..axis] ++ idx.shape ++ x.shape[axis+1..]`.
pub fn take(cx: &NodeCx, axis: usize, x: &Tensor, idx: &Tensor) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    let values = indices(cx, idx, axis, n)?;
    let mut shape = x.shape()[..axis].to_vec();
    shape.extend_from_slice(idx.shape());
    shape.extend_from_slice(&x.shape()[axis + 1..]);
    cx.check_size(&shape)?;
    // One contiguous run of `inner` elements per selected index.
    let mut data = Data::zeros(x.dtype(), shape_numel(&shape));
    let mut at = 0;
    for o in 0..outer {
        for &v in &values {
            data.copy_run(at, x.data(), (o * n + v) * inner, inner)
                .ok_or_else(|| cx.err("internal: index out of range"))?;
            at += inner;
        }
    }
    Tensor::new(shape, data).map_err(|e| cx.err(format!("internal: {e}")))
}

/// `out = x; out[p with p[axis] = idx[p]] = src[p]` in row-major order of `p` (later writes win).
pub fn scatter(cx: &NodeCx, axis: usize, x: &Tensor, idx: &Tensor, src: &Tensor) -> Result<Tensor, RuntimeError> {
    if src.shape() != idx.shape() || src.dtype() != x.dtype() {
        return Err(cx.err(format!(
            "updates {} must have the shape of the indices {} and the dtype of {}",
            src.type_string(),
            idx.type_string(),
            x.type_string()
        )));
    }
    let pos = along_axis(cx, axis, x, idx)?;
    let both = concat_data(cx, &[x, src])?;
    let mut map: Vec<usize> = (0..x.numel()).collect();
    for (j, &p) in pos.iter().enumerate() {
        map[p] = x.numel() + j;
    }
    pick_data(cx, &both, &map, x.shape().to_vec())
}

/// The start clamped to `[0, n - size]`.
fn clamp_start(start: i64, n: usize, size: usize) -> usize {
    let hi = (n - size) as i64;
    start.clamp(0, hi) as usize
}

/// `size` elements along `axis` from `start`, clamped so the window fits.
pub fn dynamic_slice(cx: &NodeCx, axis: usize, size: &Dim, x: &Tensor, start: &Tensor) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    let size = cx.dim(size)?;
    let start = scalar_int(cx, start, "the start")?;
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    if size > n {
        return Err(cx.err(format!("a window of {size} exceeds axis {axis} of {}", x.type_string())));
    }
    let s = clamp_start(start, n, size);
    let mut shape = x.shape().to_vec();
    shape[axis] = size;
    // One contiguous run of `size * inner` elements per outer index.
    let run = size * inner;
    let mut data = Data::zeros(x.dtype(), shape_numel(&shape));
    for o in 0..outer {
        data.copy_run(o * run, x.data(), (o * n + s) * inner, run)
            .ok_or_else(|| cx.err("internal: window out of range"))?;
    }
    Tensor::new(shape, data).map_err(|e| cx.err(format!("internal: {e}")))
}

/// Writes `update` into `x` at `start` along `axis`, clamped so the update fits.
pub fn dynamic_update_slice(
    cx: &NodeCx,
    axis: usize,
    x: &Tensor,
    update: &Tensor,
    start: &Tensor,
) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    check_matches(cx, "update", x, update, axis)?;
    let start = scalar_int(cx, start, "the start")?;
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    let size = update.shape()[axis];
    if size > n {
        return Err(cx.err(format!(
            "update {} exceeds axis {axis} of {}",
            update.type_string(),
            x.type_string()
        )));
    }
    let s = clamp_start(start, n, size);
    same_dtype(cx, &[x, update])?;
    // A copy of `x` with one contiguous run of `size * inner` elements replaced per outer index
    // (the KV cache of a decode loop: a copy, not a gather through an index map).
    let run = size * inner;
    let mut data = x.data().clone();
    for o in 0..outer {
        data.copy_run((o * n + s) * inner, update.data(), o * run, run)
            .ok_or_else(|| cx.err("internal: update out of range"))?;
    }
    Tensor::new(x.shape().to_vec(), data).map_err(|e| cx.err(format!("internal: {e}")))
}
