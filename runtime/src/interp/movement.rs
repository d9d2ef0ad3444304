//! Movement ops: reshape, permute, expand, slice, concat, pad. Each computes, for every output
//! element, the flat index of the input element it copies.

use mlc_ir::Dim;

use crate::error::RuntimeError;
use crate::tensor::{Data, Tensor, shape_numel};

use super::NodeCx;
use super::layout::{check_axis, for_each_index, pick, same_dtype, split_at_axis, strides};

/// Row-major reshape; element counts must agree.
pub fn reshape(cx: &NodeCx, shape: &[Dim], x: &Tensor) -> Result<Tensor, RuntimeError> {
    let shape = cx.shape(shape)?;
    if shape_numel(&shape) != x.numel() {
        return Err(cx.err(format!("cannot reshape {} to {shape:?}", x.type_string())));
    }
    x.clone().reshaped(shape).ok_or_else(|| cx.err("internal: reshape"))
}

/// `out.shape[i] = x.shape[perm[i]]`.
pub fn permute(cx: &NodeCx, perm: &[usize], x: &Tensor) -> Result<Tensor, RuntimeError> {
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if sorted != (0..x.rank()).collect::<Vec<_>>() {
        return Err(cx.err(format!(
            "{perm:?} is not a permutation of the axes of {}",
            x.type_string()
        )));
    }
    let shape: Vec<usize> = perm.iter().map(|&a| x.shape()[a]).collect();
    let st = strides(x.shape());
    let mut idx = Vec::with_capacity(x.numel());
    for_each_index(&shape, |_, i| {
        idx.push(i.iter().zip(perm).map(|(&v, &a)| v * st[a]).sum())
    });
    pick(cx, x, &idx, shape)
}

/// Broadcast to a shape: axes of size 1 stretch, leading axes may be added.
pub fn expand(cx: &NodeCx, shape: &[Dim], x: &Tensor) -> Result<Tensor, RuntimeError> {
    let shape = cx.shape(shape)?;
    let r = x.rank();
    let ok = shape.len() >= r
        && x.shape()
            .iter()
            .zip(&shape[shape.len() - r..])
            .all(|(&a, &b)| a == b || a == 1);
    if !ok {
        return Err(cx.err(format!("cannot expand {} to {shape:?}", x.type_string())));
    }
    let idx = super::layout::broadcast_map(x.shape(), &shape);
    pick(cx, x, &idx, shape)
}

/// `start..end` by `step` along `axis`; the range must lie within the axis.
pub fn slice(cx: &NodeCx, axis: usize, start: &Dim, end: &Dim, step: u64, x: &Tensor) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    let (s, e) = (cx.dim(start)?, cx.dim(end)?);
    let n = x.shape()[axis];
    if step == 0 || s > e || e > n {
        return Err(cx.err(format!(
            "range {s}..{e} by {step} is invalid for axis {axis} of {}",
            x.type_string()
        )));
    }
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    let len = (e - s).div_ceil(step);
    let mut shape = x.shape().to_vec();
    shape[axis] = len;
    let (outer, _, inner) = split_at_axis(x.shape(), axis);
    let mut idx = Vec::with_capacity(shape_numel(&shape));
    for o in 0..outer {
        for k in 0..len {
            let base = (o * n + s + k * step) * inner;
            idx.extend(base..base + inner);
        }
    }
    pick(cx, x, &idx, shape)
}

/// Concatenation along `axis`; every other axis must agree.
pub fn concat(cx: &NodeCx, axis: usize, parts: &[std::sync::Arc<Tensor>]) -> Result<Tensor, RuntimeError> {
    let first = &parts[0];
    check_axis(cx, axis, first)?;
    for p in parts {
        let same = p.rank() == first.rank() && (0..p.rank()).all(|a| a == axis || p.shape()[a] == first.shape()[a]);
        if !same {
            let types: Vec<String> = parts.iter().map(|t| t.type_string()).collect();
            return Err(cx.err(format!("operands disagree outside axis {axis}: {}", types.join(", "))));
        }
    }
    let refs: Vec<&Tensor> = parts.iter().map(|p| p.as_ref()).collect();
    concat_along(cx, axis, &refs)
}

/// Concatenates tensors of equal rank whose shapes agree outside `axis`.
fn concat_along(cx: &NodeCx, axis: usize, parts: &[&Tensor]) -> Result<Tensor, RuntimeError> {
    let dtype = same_dtype(cx, parts)?;
    let mut shape = parts[0].shape().to_vec();
    shape[axis] = parts.iter().fold(0usize, |acc, p| acc.saturating_add(p.shape()[axis]));
    cx.check_size(&shape)?;
    let (outer, _, inner) = split_at_axis(&shape, axis);
    // Per outer index, one contiguous run from each part in turn.
    let mut data = Data::zeros(dtype, shape_numel(&shape));
    let mut at = 0;
    for o in 0..outer {
        for p in parts {
            let chunk = p.shape()[axis] * inner;
            data.copy_run(at, p.data(), o * chunk, chunk)
                .ok_or_else(|| cx.err("internal: concat out of range"))?;
            at += chunk;
        }
    }
    Tensor::new(shape, data).map_err(|e| cx.err(format!("internal: {e}")))
}

/// Pads `axis` with `before` and `after` elements equal to `value` (converted to the dtype).
pub fn pad(cx: &NodeCx, axis: usize, before: u64, after: u64, value: f64, x: &Tensor) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    let size = |n: u64| -> Result<Vec<usize>, RuntimeError> {
        let mut shape = x.shape().to_vec();
        shape[axis] = usize::try_from(n).unwrap_or(usize::MAX);
        cx.check_size(&shape)?;
        Ok(shape)
    };
    let (b, a) = (size(before)?, size(after)?);
    let fill = |shape: &[usize]| Tensor::from_f64_as(x.dtype(), shape, &vec![value; shape_numel(shape)]);
    let (fb, fa) = (fill(&b), fill(&a));
    concat_along(cx, axis, &[&fb, x, &fa])
}
