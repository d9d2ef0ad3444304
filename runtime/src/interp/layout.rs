//! Index arithmetic shared by the ops: strides, broadcasting and element gathers.

use mlc_ir::DType;

use crate::error::RuntimeError;
use crate::tensor::{Data, Tensor, shape_numel};

use super::NodeCx;

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1].saturating_mul(shape[i + 1]);
    }
    s
}

/// Calls `f(flat, index)` for every multi-index of `shape` in row-major order.
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let n = shape_numel(shape);
    let mut idx = vec![0usize; shape.len()];
    for flat in 0..n {
        f(flat, &idx);
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// The numpy broadcast of several shapes (right-aligned; a size of 1 stretches).
pub fn broadcast(cx: &NodeCx, shapes: &[&[usize]]) -> Result<Vec<usize>, RuntimeError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                let list: Vec<String> = shapes.iter().map(|s| format!("{s:?}")).collect();
                return Err(cx.err(format!("shapes {} do not broadcast", list.join(" and "))));
            }
        }
    }
    cx.check_size(&out)?;
    Ok(out)
}

/// For each element of `out_shape` (row-major), the flat index of the element of a tensor of
/// shape `in_shape` that broadcasts to it. `in_shape` must broadcast to `out_shape`.
pub fn broadcast_map(in_shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let offset = out_shape.len() - in_shape.len();
    let in_strides = strides(in_shape);
    let mut map = Vec::with_capacity(shape_numel(out_shape));
    for_each_index(out_shape, |_, idx| {
        let mut flat = 0;
        for (a, &s) in in_strides.iter().enumerate() {
            if in_shape[a] != 1 {
                flat += idx[a + offset] * s;
            }
        }
        map.push(flat);
    });
    map
}

/// The elements of `t` at flat positions `idx`, as a tensor of `shape`.
pub fn pick(cx: &NodeCx, t: &Tensor, idx: &[usize], shape: Vec<usize>) -> Result<Tensor, RuntimeError> {
    pick_data(cx, t.data(), idx, shape)
}

/// Like [`pick`] on raw data.
pub fn pick_data(cx: &NodeCx, d: &Data, idx: &[usize], shape: Vec<usize>) -> Result<Tensor, RuntimeError> {
    let data = d
        .take(idx)
        .ok_or_else(|| cx.err("internal: element index out of range"))?;
    Tensor::new(shape, data).map_err(|e| cx.err(format!("internal: {e}")))
}

/// The data of several tensors of one dtype, concatenated.
pub fn concat_data(cx: &NodeCx, parts: &[&Tensor]) -> Result<Data, RuntimeError> {
    same_dtype(cx, parts)?;
    let datas: Vec<&Data> = parts.iter().map(|t| t.data()).collect();
    Data::concat(&datas).ok_or_else(|| cx.err("internal: operand dtypes differ"))
}

/// The dtype all of `parts` (at least one) share; an error listing their types if they differ.
pub fn same_dtype(cx: &NodeCx, parts: &[&Tensor]) -> Result<DType, RuntimeError> {
    let dtype = parts[0].dtype();
    if parts.iter().all(|p| p.dtype() == dtype) {
        return Ok(dtype);
    }
    let types: Vec<String> = parts.iter().map(|t| t.type_string()).collect();
    Err(cx.err(format!("operand dtypes differ: {}", types.join(", "))))
}

/// Checks that `axis` is an axis of `t`.
pub fn check_axis(cx: &NodeCx, axis: usize, t: &Tensor) -> Result<(), RuntimeError> {
    if axis >= t.rank() {
        return Err(cx.err(format!("axis {axis} is out of range for {}", t.type_string())));
    }
    Ok(())
}

/// Reads an integer scalar operand (any integer dtype).
pub fn scalar_int(cx: &NodeCx, t: &Tensor, what: &str) -> Result<i64, RuntimeError> {
    if !t.dtype().is_int() || t.rank() != 0 {
        return Err(cx.err(format!("{what} must be an integer scalar, got {}", t.type_string())));
    }
    t.to_i64_vec()
        .first()
        .copied()
        .ok_or_else(|| cx.err(format!("{what} is empty")))
}

/// Splits `shape` around `axis` into (outer count, axis size, inner count).
pub fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape_numel(&shape[..axis]),
        shape[axis],
        shape_numel(&shape[axis + 1..]),
    )
}
