//! Reductions along axes: reduce, argmax/argmin, cumsum, top-k.

use std::cmp::Ordering;

use mlc_ir::{ArgOp, DType, Dim, ReduceOp};

use crate::error::RuntimeError;
use crate::tensor::Tensor;

use super::NodeCx;
use super::layout::{broadcast_map, check_axis, pick, split_at_axis};

/// The identity of an integer max/min for the dtype, so empty reductions stay in range.
fn int_limits(d: DType) -> (i64, i64) {
    if d == DType::I32 {
        (i64::from(i32::MIN), i64::from(i32::MAX))
    } else {
        (i64::MIN, i64::MAX)
    }
}

/// Reduces `axes` of `x`; floats accumulate in `f64` in row-major order and round once.
pub fn reduce(cx: &NodeCx, op: ReduceOp, axes: &[usize], keepdim: bool, x: &Tensor) -> Result<Tensor, RuntimeError> {
    let mut reduced = vec![false; x.rank()];
    for &a in axes {
        check_axis(cx, a, x)?;
        if std::mem::replace(&mut reduced[a], true) {
            return Err(cx.err(format!("axis {a} is repeated")));
        }
    }
    let kept: Vec<usize> = x
        .shape()
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let out_shape: Vec<usize> = if keepdim {
        kept.clone()
    } else {
        x.shape()
            .iter()
            .zip(&reduced)
            .filter(|(_, r)| !**r)
            .map(|(&d, _)| d)
            .collect()
    };
    // For every input element, the output slot it reduces into.
    let slot = broadcast_map(&kept, x.shape());
    let n_out: usize = kept.iter().product();
    let d = x.dtype();
    let is_bool = d == DType::Bool;
    if matches!(op, ReduceOp::Any | ReduceOp::All) != is_bool {
        return Err(cx.err(format!("not defined for {}", x.type_string())));
    }
    if is_bool {
        let all = op == ReduceOp::All;
        let mut acc = vec![all; n_out];
        for (v, &s) in x.to_bool_vec().into_iter().zip(&slot) {
            acc[s] = if all { acc[s] && v } else { acc[s] || v };
        }
        return Ok(Tensor::from_bool(&out_shape, acc));
    }
    if d.is_float() {
        let init = match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Prod => 1.0,
            ReduceOp::Max => f64::NEG_INFINITY,
            _ => f64::INFINITY,
        };
        let mut acc = vec![init; n_out];
        for (v, &s) in x.to_f64_vec().into_iter().zip(&slot) {
            acc[s] = match op {
                ReduceOp::Sum => acc[s] + v,
                ReduceOp::Prod => acc[s] * v,
                ReduceOp::Max => acc[s].max(v),
                _ => acc[s].min(v),
            };
        }
        return Ok(Tensor::from_f64_as(d, &out_shape, &acc));
    }
    let (lo, hi) = int_limits(d);
    let init = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Prod => 1,
        ReduceOp::Max => lo,
        _ => hi,
    };
    let mut acc = vec![init; n_out];
    for (v, &s) in x.to_i64_vec().into_iter().zip(&slot) {
        acc[s] = match op {
            ReduceOp::Sum => acc[s].wrapping_add(v),
            ReduceOp::Prod => acc[s].wrapping_mul(v),
            ReduceOp::Max => acc[s].max(v),
            _ => acc[s].min(v),
        };
    }
    Ok(Tensor::from_i64_as(d, &out_shape, acc))
}

/// Numbers compared exactly: floats as `f64` (exact for every float dtype), integers as `i64`.
fn keys(x: &Tensor) -> Result<Vec<f64>, Vec<i64>> {
    if x.dtype().is_float() {
        Ok(x.to_f64_vec())
    } else {
        Err(x.to_i64_vec())
    }
}

/// Total order for top-k and arg reductions: NaN above everything, NaNs equal.
fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// `argmax`/`argmin` along `axis`: the first index of the extreme, or of the first NaN.
pub fn arg_reduce(cx: &NodeCx, op: ArgOp, axis: usize, keepdim: bool, x: &Tensor) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    if x.dtype() == DType::Bool {
        return Err(cx.err(format!("not defined for {}", x.type_string())));
    }
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    if n == 0 && outer * inner > 0 {
        return Err(cx.err(format!("axis {axis} of {} is empty", x.type_string())));
    }
    let k = keys(x);
    // `better(a, b)`: element `a` replaces the current best `b`.
    let better = |a: usize, b: usize| -> bool {
        let ord = match &k {
            Ok(f) if f[b].is_nan() => return false,
            Ok(f) if f[a].is_nan() => return true,
            Ok(f) => cmp_f64(f[a], f[b]),
            Err(i) => i[a].cmp(&i[b]),
        };
        ord == if op == ArgOp::ArgMax {
            Ordering::Greater
        } else {
            Ordering::Less
        }
    };
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let mut best = 0;
            for j in 1..n {
                if better(at(j), at(best)) {
                    best = j;
                }
            }
            out.push(best as i64);
        }
    }
    let mut shape = x.shape().to_vec();
    if keepdim {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    Ok(Tensor::from_i64(&shape, out))
}

/// Running sum along `axis` (`exclusive` starts at 0, `reverse` runs from the end); floats
/// accumulate in `f64` and round each output.
pub fn cumsum(cx: &NodeCx, axis: usize, exclusive: bool, reverse: bool, x: &Tensor) -> Result<Tensor, RuntimeError> {
    check_axis(cx, axis, x)?;
    let d = x.dtype();
    if d == DType::Bool {
        return Err(cx.err(format!("not defined for {}", x.type_string())));
    }
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    let order: Vec<usize> = if reverse {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    let lines = (0..outer).flat_map(|o| (0..inner).map(move |i| (o, i)));
    match keys(x) {
        Ok(v) => {
            let mut out = vec![0.0; v.len()];
            for (o, i) in lines {
                let mut acc = 0.0;
                for &j in &order {
                    let p = (o * n + j) * inner + i;
                    out[p] = if exclusive { acc } else { acc + v[p] };
                    acc += v[p];
                }
            }
            Ok(Tensor::from_f64_as(d, x.shape(), &out))
        }
        Err(v) => {
            let mut out = vec![0i64; v.len()];
            for (o, i) in lines {
                let mut acc = 0i64;
                for &j in &order {
                    let p = (o * n + j) * inner + i;
                    out[p] = if exclusive { acc } else { acc.wrapping_add(v[p]) };
                    acc = acc.wrapping_add(v[p]);
                }
            }
            Ok(Tensor::from_i64_as(d, x.shape(), out))
        }
    }
}

/// The `k` largest (or smallest) elements along `axis`, sorted, and their indices. NaN ranks
/// above everything; equal values keep the lower index first.
pub fn topk(cx: &NodeCx, k: &Dim, axis: usize, largest: bool, x: &Tensor) -> Result<Vec<Tensor>, RuntimeError> {
    check_axis(cx, axis, x)?;
    if x.dtype() == DType::Bool {
        return Err(cx.err(format!("not defined for {}", x.type_string())));
    }
    let k = cx.dim(k)?;
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    if k > n {
        return Err(cx.err(format!("k = {k} exceeds axis {axis} of {}", x.type_string())));
    }
    let key = keys(x);
    let cmp = |a: usize, b: usize| match &key {
        Ok(f) => cmp_f64(f[a], f[b]),
        Err(i) => i[a].cmp(&i[b]),
    };
    let mut shape = x.shape().to_vec();
    shape[axis] = k;
    let mut flat = vec![0usize; outer * k * inner];
    let mut indices = vec![0i64; outer * k * inner];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * n + j) * inner + i;
            let mut js: Vec<usize> = (0..n).collect();
            // A stable sort keeps ties in index order.
            if largest {
                js.sort_by(|&a, &b| cmp(at(b), at(a)));
            } else {
                js.sort_by(|&a, &b| cmp(at(a), at(b)));
            }
            for (r, &j) in js[..k].iter().enumerate() {
                let q = (o * k + r) * inner + i;
                flat[q] = at(j);
                indices[q] = j as i64;
            }
        }
    }
    Ok(vec![
        pick(cx, x, &flat, shape.clone())?,
        Tensor::from_i64(&shape, indices),
    ])
}
