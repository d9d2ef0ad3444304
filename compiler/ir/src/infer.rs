//! Type and shape inference: the result types of every op from its operand types.
//!
//! This is the single definition of each op's typing rule; the lowering calls it as it builds
//! the graph (so shape errors point at the source), and the verifier calls it again after every
//! pass.

use crate::dtype::DType;
use crate::graph::TensorType;
use crate::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::shape::{Dim, Shape, numel, shape_to_string};

/// A typing error: the op, what is wrong, and the operand types.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{op}`: {message}")]
pub struct InferError {
    pub op: &'static str,
    pub message: String,
}

fn err<T>(op: &Op, message: impl Into<String>) -> Result<T, InferError> {
    Err(InferError {
        op: op.mnemonic(),
        message: message.into(),
    })
}

fn types_str(types: &[&TensorType]) -> String {
    types.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
}

/// Broadcasts shapes numpy-style (right-aligned; a dim of 1 stretches). `None` if incompatible.
pub fn broadcast_shapes(shapes: &[&Shape]) -> Option<Shape> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let one = Dim::c(1);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let mut d = one.clone();
        for s in shapes {
            if i + s.len() < rank {
                continue;
            }
            let x = &s[i + s.len() - rank];
            if *x == one || *x == d {
                continue;
            }
            if d == one {
                d = x.clone();
            } else {
                return None;
            }
        }
        out.push(d);
    }
    Some(out)
}

fn check_count(op: &Op, operands: &[&TensorType], n: usize) -> Result<(), InferError> {
    if operands.len() != n {
        return err(op, format!("expects {n} operand(s), got {}", operands.len()));
    }
    Ok(())
}

fn check_axis(op: &Op, axis: usize, t: &TensorType) -> Result<(), InferError> {
    if axis >= t.rank() {
        return err(op, format!("axis {axis} is out of range for {t}"));
    }
    Ok(())
}

fn check_index(op: &Op, t: &TensorType) -> Result<(), InferError> {
    if !t.dtype.is_int() {
        return err(op, format!("indices must be i32 or i64, got {t}"));
    }
    Ok(())
}

fn check_scalar_int(op: &Op, t: &TensorType, what: &str) -> Result<(), InferError> {
    if !t.dtype.is_int() || t.rank() != 0 {
        return err(op, format!("{what} must be an integer scalar, got {t}"));
    }
    Ok(())
}

/// The result types of `op` applied to operands of the given types.
pub fn infer(op: &Op, operands: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
    let one = |t: TensorType| Ok(vec![t]);
    match op {
        Op::Input { .. } | Op::Param { .. } => err(op, "inputs and params carry declared types"),
        Op::Const(lit) => {
            check_count(op, operands, 0)?;
            let n: u64 = lit.shape.iter().product();
            if n as usize != lit.len() {
                return err(
                    op,
                    format!("literal has {} elements for shape {:?}", lit.len(), lit.shape),
                );
            }
            one(TensorType::new(
                lit.dtype,
                lit.shape.iter().map(|&d| Dim::c(d as i64)).collect(),
            ))
        }
        Op::DimSize(_) => {
            check_count(op, operands, 0)?;
            one(TensorType::scalar(DType::I64))
        }
        Op::Iota { shape, axis, dtype } => {
            check_count(op, operands, 0)?;
            if *axis >= shape.len() {
                return err(
                    op,
                    format!("axis {axis} is out of range for shape {}", shape_to_string(shape)),
                );
            }
            if *dtype == DType::Bool {
                return err(op, "iota cannot produce bool");
            }
            one(TensorType::new(*dtype, shape.clone()))
        }
        Op::RngUniform { shape } => {
            check_count(op, operands, 2)?;
            check_scalar_int(op, operands[0], "the seed")?;
            check_scalar_int(op, operands[1], "the offset")?;
            one(TensorType::new(DType::F32, shape.clone()))
        }
        Op::Unary(u) => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            let ok = match u {
                UnaryOp::Not => t.dtype == DType::Bool,
                UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign => t.dtype != DType::Bool,
                _ => t.dtype.is_float(),
            };
            if !ok {
                return err(op, format!("not defined for {t}"));
            }
            one(t.clone())
        }
        Op::Binary(b) => {
            check_count(op, operands, 2)?;
            let (x, y) = (operands[0], operands[1]);
            if x.dtype != y.dtype {
                return err(op, format!("operand dtypes differ: {x} and {y}"));
            }
            if b.is_logical() != (x.dtype == DType::Bool) && !b.is_comparison() {
                return err(op, format!("not defined for {x} and {y}"));
            }
            if matches!(b, BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge) && x.dtype == DType::Bool {
                return err(op, format!("cannot order bool values: {x} and {y}"));
            }
            let shape = broadcast_shapes(&[&x.shape, &y.shape]).ok_or_else(|| InferError {
                op: op.mnemonic(),
                message: format!("cannot broadcast {x} with {y}"),
            })?;
            let dtype = if b.is_comparison() { DType::Bool } else { x.dtype };
            one(TensorType::new(dtype, shape))
        }
        Op::Select => {
            check_count(op, operands, 3)?;
            let (c, a, b) = (operands[0], operands[1], operands[2]);
            if c.dtype != DType::Bool {
                return err(op, format!("the condition must be bool, got {c}"));
            }
            if a.dtype != b.dtype {
                return err(op, format!("branch dtypes differ: {a} and {b}"));
            }
            let shape = broadcast_shapes(&[&c.shape, &a.shape, &b.shape]).ok_or_else(|| InferError {
                op: op.mnemonic(),
                message: format!("cannot broadcast {}", types_str(operands)),
            })?;
            one(TensorType::new(a.dtype, shape))
        }
        Op::Cast(to) => {
            check_count(op, operands, 1)?;
            one(TensorType::new(*to, operands[0].shape.clone()))
        }
        Op::Reduce { op: r, axes, keepdim } => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            let is_bool = t.dtype == DType::Bool;
            if matches!(r, ReduceOp::Any | ReduceOp::All) != is_bool {
                return err(op, format!("not defined for {t}"));
            }
            let mut seen = vec![false; t.rank()];
            for &a in axes {
                check_axis(op, a, t)?;
                if std::mem::replace(&mut seen[a], true) {
                    return err(op, format!("axis {a} is repeated"));
                }
            }
            let shape = t
                .shape
                .iter()
                .enumerate()
                .filter_map(|(i, d)| match (seen[i], keepdim) {
                    (false, _) => Some(d.clone()),
                    (true, true) => Some(Dim::c(1)),
                    (true, false) => None,
                })
                .collect();
            one(TensorType::new(t.dtype, shape))
        }
        Op::ArgReduce { axis, keepdim, .. } => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            check_axis(op, *axis, t)?;
            if t.dtype == DType::Bool {
                return err(op, format!("not defined for {t}"));
            }
            let mut shape = t.shape.clone();
            if *keepdim {
                shape[*axis] = Dim::c(1);
            } else {
                shape.remove(*axis);
            }
            one(TensorType::new(DType::I64, shape))
        }
        Op::Reshape(shape) => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            if numel(&t.shape) != numel(shape) {
                return err(
                    op,
                    format!(
                        "cannot reshape {t} to {}: element counts differ",
                        shape_to_string(shape)
                    ),
                );
            }
            one(TensorType::new(t.dtype, shape.clone()))
        }
        Op::Permute(perm) => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            let mut sorted = perm.clone();
            sorted.sort();
            if sorted != (0..t.rank()).collect::<Vec<_>>() {
                return err(op, format!("{perm:?} is not a permutation of the axes of {t}"));
            }
            one(TensorType::new(
                t.dtype,
                perm.iter().map(|&a| t.shape[a].clone()).collect(),
            ))
        }
        Op::Expand(shape) => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            let ok = shape.len() >= t.rank()
                && t.shape
                    .iter()
                    .zip(&shape[shape.len() - t.rank()..])
                    .all(|(a, b)| a == b || *a == Dim::c(1));
            if !ok {
                return err(op, format!("cannot expand {t} to {}", shape_to_string(shape)));
            }
            one(TensorType::new(t.dtype, shape.clone()))
        }
        Op::Slice { axis, start, end, step } => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            check_axis(op, *axis, t)?;
            if *step == 0 {
                return err(op, "step must be positive");
            }
            let len = end - start;
            if let (Some(s), Some(e), Some(n)) = (start.as_const(), end.as_const(), t.shape[*axis].as_const())
                && (s < 0 || e < s || e > n)
            {
                return err(op, format!("range {s}..{e} is out of bounds for axis {axis} of {t}"));
            }
            let out = match (len.as_const(), *step) {
                (_, 1) => len,
                (Some(l), s) => Dim::c((l + s as i64 - 1) / s as i64),
                (None, s) => len.div_exact(s as i64).ok_or_else(|| InferError {
                    op: op.mnemonic(),
                    message: format!("a step of {s} over the symbolic length {len} is not exact"),
                })?,
            };
            let mut shape = t.shape.clone();
            shape[*axis] = out;
            one(TensorType::new(t.dtype, shape))
        }
        Op::Concat { axis } => {
            if operands.is_empty() {
                return err(op, "needs at least one operand");
            }
            let first = operands[0];
            check_axis(op, *axis, first)?;
            let mut total = Dim::c(0);
            for t in operands {
                let same = t.dtype == first.dtype
                    && t.rank() == first.rank()
                    && (0..t.rank()).all(|i| i == *axis || t.shape[i] == first.shape[i]);
                if !same {
                    return err(
                        op,
                        format!("operands disagree outside axis {axis}: {}", types_str(operands)),
                    );
                }
                total = &total + &t.shape[*axis];
            }
            let mut shape = first.shape.clone();
            shape[*axis] = total;
            one(TensorType::new(first.dtype, shape))
        }
        Op::Pad {
            axis, before, after, ..
        } => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            check_axis(op, *axis, t)?;
            let mut shape = t.shape.clone();
            shape[*axis] = &shape[*axis] + &Dim::c((*before + *after) as i64);
            one(TensorType::new(t.dtype, shape))
        }
        Op::MatMul => {
            check_count(op, operands, 2)?;
            let (a, b) = (operands[0], operands[1]);
            if a.rank() < 2 || b.rank() < 2 || a.dtype != b.dtype || a.dtype == DType::Bool {
                return err(
                    op,
                    format!("needs two numeric tensors of rank >= 2 and one dtype, got {a} and {b}"),
                );
            }
            let (ra, rb) = (a.rank(), b.rank());
            if a.shape[ra - 1] != b.shape[rb - 2] {
                return err(op, format!("inner dimensions differ: {a} @ {b}"));
            }
            let batch =
                broadcast_shapes(&[&a.shape[..ra - 2].to_vec(), &b.shape[..rb - 2].to_vec()]).ok_or_else(|| {
                    InferError {
                        op: op.mnemonic(),
                        message: format!("batch axes do not broadcast: {a} @ {b}"),
                    }
                })?;
            let mut shape = batch;
            shape.push(a.shape[ra - 2].clone());
            shape.push(b.shape[rb - 1].clone());
            one(TensorType::new(a.dtype, shape))
        }
        Op::Gather { axis } => {
            check_count(op, operands, 2)?;
            let (x, idx) = (operands[0], operands[1]);
            check_axis(op, *axis, x)?;
            check_index(op, idx)?;
            if idx.rank() != x.rank() || (0..x.rank()).any(|i| i != *axis && idx.shape[i] != x.shape[i]) {
                return err(op, format!("indices {idx} must match {x} on every axis but {axis}"));
            }
            one(TensorType::new(x.dtype, idx.shape.clone()))
        }
        Op::Take { axis } => {
            check_count(op, operands, 2)?;
            let (x, idx) = (operands[0], operands[1]);
            check_axis(op, *axis, x)?;
            check_index(op, idx)?;
            let mut shape = x.shape[..*axis].to_vec();
            shape.extend(idx.shape.iter().cloned());
            shape.extend(x.shape[axis + 1..].iter().cloned());
            one(TensorType::new(x.dtype, shape))
        }
        Op::Scatter { axis } => {
            check_count(op, operands, 3)?;
            let (x, idx, src) = (operands[0], operands[1], operands[2]);
            check_axis(op, *axis, x)?;
            check_index(op, idx)?;
            if idx.rank() != x.rank() || (0..x.rank()).any(|i| i != *axis && idx.shape[i] != x.shape[i]) {
                return err(op, format!("indices {idx} must match {x} on every axis but {axis}"));
            }
            if src.shape != idx.shape || src.dtype != x.dtype {
                return err(
                    op,
                    format!("updates {src} must have the shape of the indices {idx} and the dtype of {x}"),
                );
            }
            one(x.clone())
        }
        Op::DynamicSlice { axis, size } => {
            check_count(op, operands, 2)?;
            let x = operands[0];
            check_axis(op, *axis, x)?;
            check_scalar_int(op, operands[1], "the start")?;
            let mut shape = x.shape.clone();
            shape[*axis] = size.clone();
            one(TensorType::new(x.dtype, shape))
        }
        Op::DynamicUpdateSlice { axis } => {
            check_count(op, operands, 3)?;
            let (x, u) = (operands[0], operands[1]);
            check_axis(op, *axis, x)?;
            check_scalar_int(op, operands[2], "the start")?;
            if u.dtype != x.dtype
                || u.rank() != x.rank()
                || (0..x.rank()).any(|i| i != *axis && u.shape[i] != x.shape[i])
            {
                return err(op, format!("update {u} must match {x} on every axis but {axis}"));
            }
            one(x.clone())
        }
        Op::Cumsum { axis, .. } => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            check_axis(op, *axis, t)?;
            if t.dtype == DType::Bool {
                return err(op, format!("not defined for {t}"));
            }
            one(t.clone())
        }
        Op::TopK { k, axis, .. } => {
            check_count(op, operands, 1)?;
            let t = operands[0];
            check_axis(op, *axis, t)?;
            if t.dtype == DType::Bool {
                return err(op, format!("not defined for {t}"));
            }
            if let (Some(k), Some(n)) = (k.as_const(), t.shape[*axis].as_const())
                && (k < 0 || k > n)
            {
                return err(op, format!("k = {k} is out of range for axis {axis} of {t}"));
            }
            let mut shape = t.shape.clone();
            shape[*axis] = k.clone();
            Ok(vec![
                TensorType::new(t.dtype, shape.clone()),
                TensorType::new(DType::I64, shape),
            ])
        }
        Op::Loop(l) => infer_loop(op, l, operands),
    }
}

fn infer_loop(op: &Op, l: &crate::op::LoopOp, operands: &[&TensorType]) -> Result<Vec<TensorType>, InferError> {
    let body_in = l.body.input_types();
    let body_out = l.body.output_types();
    if body_in.len() != 1 + operands.len() {
        return err(
            op,
            format!(
                "body takes {} inputs, loop has {} operands (+1 index)",
                body_in.len(),
                operands.len()
            ),
        );
    }
    if l.n_carried > operands.len() {
        return err(op, "more carried values than operands");
    }
    if body_in[0] != TensorType::scalar(DType::I64) {
        return err(
            op,
            format!("the body's first input is the index, i64[]; got {}", body_in[0]),
        );
    }
    for (i, t) in operands.iter().enumerate() {
        if body_in[i + 1] != **t {
            return err(
                op,
                format!("operand {i} is {t} but the body expects {}", body_in[i + 1]),
            );
        }
    }
    let expected = l.n_carried + usize::from(l.has_stop) + l.n_emit;
    if body_out.len() != expected {
        return err(op, format!("body has {} outputs, expected {expected}", body_out.len()));
    }
    for i in 0..l.n_carried {
        if body_out[i] != *operands[i] {
            return err(
                op,
                format!(
                    "carried value {i} enters as {} but the body returns {}",
                    operands[i], body_out[i]
                ),
            );
        }
    }
    if l.has_stop && body_out[l.n_carried] != TensorType::scalar(DType::Bool) {
        return err(
            op,
            format!("the stop flag must be bool[], got {}", body_out[l.n_carried]),
        );
    }
    if let Some(t) = l.trips.as_const()
        && (t < 0 || t as u64 > l.max_trips)
    {
        return err(op, format!("{t} trips exceed the maximum {}", l.max_trips));
    }
    let mut out: Vec<TensorType> = operands[..l.n_carried].iter().map(|t| (*t).clone()).collect();
    for t in &body_out[l.n_carried + usize::from(l.has_stop)..] {
        let mut shape = vec![l.trips.clone()];
        shape.extend(t.shape.iter().cloned());
        out.push(TensorType::new(t.dtype, shape));
    }
    Ok(out)
}
