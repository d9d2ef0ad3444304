//! Ops without tensor inputs (constants, dims, iota) and the counter-based RNG.

use mlc_ir::{DType, Dim, Literal, LiteralData};
use mlc_kernels::uniform_f32;

use crate::error::RuntimeError;
use crate::tensor::{Tensor, shape_numel};

use super::NodeCx;
use super::layout::{for_each_index, scalar_int};

/// A literal, converted to its dtype as by a cast.
pub fn constant(cx: &NodeCx, lit: &Literal) -> Result<Tensor, RuntimeError> {
    let shape: Vec<usize> = lit
        .shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(usize::MAX))
        .collect();
    cx.check_size(&shape)?;
    if shape_numel(&shape) != lit.len() {
        return Err(cx.err(format!("literal has {} elements for shape {shape:?}", lit.len())));
    }
    Ok(match &lit.data {
        LiteralData::Float(v) => Tensor::from_f64_as(lit.dtype, &shape, v),
        LiteralData::Int(v) => Tensor::from_i64_as(lit.dtype, &shape, v.clone()),
        LiteralData::Bool(v) if lit.dtype == DType::Bool => Tensor::from_bool(&shape, v.clone()),
        LiteralData::Bool(v) => Tensor::from_i64_as(lit.dtype, &shape, v.iter().map(|&b| i64::from(b)).collect()),
    })
}

/// The run-time value of a dimension expression, as an `i64` scalar.
pub fn dim_size(cx: &NodeCx, d: &Dim) -> Result<Tensor, RuntimeError> {
    // A dim used as a value may be negative (`T - S`); only sizes must not be.
    let v = d
        .eval(cx.bindings)
        .map_err(|symbol| cx.err(format!("dimension symbol `{symbol}` is not bound by any input")))?;
    Ok(Tensor::scalar_i64(v))
}

/// `0, 1, 2, ...` along `axis`, broadcast over the other axes.
pub fn iota(cx: &NodeCx, shape: &[Dim], axis: usize, dtype: DType) -> Result<Tensor, RuntimeError> {
    let shape = cx.shape(shape)?;
    if axis >= shape.len() || dtype == DType::Bool {
        return Err(cx.err(format!("cannot produce {dtype}{shape:?} along axis {axis}")));
    }
    let mut v = Vec::with_capacity(shape_numel(&shape));
    for_each_index(&shape, |_, idx| v.push(idx[axis] as i64));
    Ok(Tensor::from_i64_as(dtype, &shape, v))
}

/// Element `i` (row-major) is `uniform_f32(seed, offset, i)`; the `i64` operands are read as
/// `u64` (two's complement).
pub fn rng_uniform(cx: &NodeCx, shape: &[Dim], seed: &Tensor, offset: &Tensor) -> Result<Tensor, RuntimeError> {
    let shape = cx.shape(shape)?;
    let seed = scalar_int(cx, seed, "the seed")? as u64;
    let offset = scalar_int(cx, offset, "the offset")? as u64;
    let n = shape_numel(&shape) as u64;
    Ok(Tensor::from_f32(
        &shape,
        (0..n).map(|i| uniform_f32(seed, offset, i)).collect(),
    ))
}
