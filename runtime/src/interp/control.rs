//! The `loop` op: runs its body graph with the same interpreter.

use std::sync::Arc;

use mlc_ir::{DType, Graph, LoopOp, TensorType, Value};

use crate::error::RuntimeError;
use crate::tensor::{Data, Tensor, shape_numel};

use super::{Ctx, NodeCx, eval_graph, eval_shape};

/// Runs a loop: `trips` iterations (at most `max_trips`), ending early after the iteration
/// whose stop flag is true. Returns the final carried values, then each emitted value stacked
/// along a new axis 0 of length `trips`, zero in the rows of iterations that did not run.
pub(super) fn eval_loop(
    ctx: &Ctx,
    cx: &NodeCx,
    l: &LoopOp,
    operands: &[Arc<Tensor>],
) -> Result<Vec<Arc<Tensor>>, RuntimeError> {
    let trips = l.trips.eval(cx.bindings).map_err(|symbol| RuntimeError::UnboundDim {
        symbol,
        context: format!("`loop`{}", cx.at),
    })?;
    if trips < 0 {
        return Err(cx.err(format!("the trip count {} evaluates to {trips}", l.trips)));
    }
    if trips as u64 > l.max_trips {
        return Err(RuntimeError::TooManyTrips {
            at: cx.at.clone(),
            trips,
            max: l.max_trips,
        });
    }
    if trips as u64 > ctx.opts.max_loop_trips {
        return Err(RuntimeError::TripLimit {
            at: cx.at.clone(),
            trips,
            limit: ctx.opts.max_loop_trips,
        });
    }
    let trips = trips as usize;
    let body = &l.body;
    let stop = usize::from(l.has_stop);
    let n_outputs = l.n_carried.checked_add(stop).and_then(|n| n.checked_add(l.n_emit));
    if l.n_carried > operands.len() || body.inputs.len() != 1 + operands.len() || n_outputs != Some(body.outputs.len())
    {
        return Err(cx.err(format!(
            "body with {} inputs and {} outputs does not fit {} operands, {} carried, {} emitted",
            body.inputs.len(),
            body.outputs.len(),
            operands.len(),
            l.n_carried,
            l.n_emit
        )));
    }
    let context = format!("`loop`{} body", cx.at);
    let in_types = io_types(cx, body, true)?
        .iter()
        .map(|t| Ok((t.dtype, eval_shape(&t.shape, cx.bindings, &context)?)))
        .collect::<Result<Vec<_>, RuntimeError>>()?;
    let emit_types = io_types(cx, body, false)?[l.n_carried + stop..]
        .iter()
        .map(|t| {
            let shape = eval_shape(&t.shape, cx.bindings, &context)?;
            let mut stacked = vec![trips];
            stacked.extend(&shape);
            cx.check_size(&stacked)?;
            Ok((t.dtype, shape))
        })
        .collect::<Result<Vec<_>, RuntimeError>>()?;

    let mut carried: Vec<Arc<Tensor>> = operands[..l.n_carried].to_vec();
    let captured = &operands[l.n_carried..];
    let mut rows: Vec<Vec<Arc<Tensor>>> = vec![Vec::new(); l.n_emit];
    for i in 0..trips {
        let mut args = vec![Arc::new(Tensor::scalar_i64(i as i64))];
        args.extend(carried.iter().cloned());
        args.extend(captured.iter().cloned());
        for (k, (a, (dtype, shape))) in args.iter().zip(&in_types).enumerate() {
            if a.dtype() != *dtype || a.shape() != shape.as_slice() {
                return Err(cx.err(format!(
                    "body input {k} expects {dtype}{shape:?}, got {} in iteration {i}",
                    a.type_string()
                )));
            }
        }
        let mut outs = eval_graph(ctx, body, cx.bindings, args)?;
        let emitted = outs.split_off(l.n_carried + stop);
        let flag = outs.split_off(l.n_carried);
        carried = outs;
        for (row, e) in rows.iter_mut().zip(emitted) {
            row.push(e);
        }
        if let Some(f) = flag.first() {
            if f.dtype() != DType::Bool || f.numel() != 1 {
                return Err(cx.err(format!("the stop flag must be bool[], got {}", f.type_string())));
            }
            if f.to_bool_vec()[0] {
                break;
            }
        }
    }
    let mut results = carried;
    for (row, (dtype, shape)) in rows.iter().zip(&emit_types) {
        results.push(Arc::new(stack(cx, row, *dtype, shape, trips)?));
    }
    Ok(results)
}

/// The declared types of the body's inputs (or outputs), failing on dangling references.
fn io_types<'g>(cx: &NodeCx, body: &'g Graph, inputs: bool) -> Result<Vec<&'g TensorType>, RuntimeError> {
    let values: Vec<Value> = if inputs {
        body.inputs.iter().map(|&n| Value::of(n)).collect()
    } else {
        body.outputs.iter().map(|(_, v)| *v).collect()
    };
    values
        .iter()
        .map(|v| {
            let node = body.dag.node_weight(v.node);
            node.and_then(|n| n.outputs.get(v.index as usize))
                .ok_or_else(|| cx.err("the body refers to a value that does not exist"))
        })
        .collect()
}

/// Stacks per-iteration values along a new axis 0 of length `trips`, zero-filling the rest.
fn stack(
    cx: &NodeCx,
    rows: &[Arc<Tensor>],
    dtype: DType,
    shape: &[usize],
    trips: usize,
) -> Result<Tensor, RuntimeError> {
    for r in rows {
        if r.dtype() != dtype || r.shape() != shape {
            return Err(cx.err(format!(
                "emitted {} where {dtype}{shape:?} was declared",
                r.type_string()
            )));
        }
    }
    let row_len = shape_numel(shape);
    let zeros = Data::zeros(dtype, row_len * (trips - rows.len()));
    let mut parts: Vec<&Data> = rows.iter().map(|r| r.data()).collect();
    parts.push(&zeros);
    let all = Data::concat(&parts).ok_or_else(|| cx.err("internal: emitted dtypes differ"))?;
    let mut out_shape = vec![trips];
    out_shape.extend(shape);
    Tensor::new(out_shape, all).map_err(|e| cx.err(format!("internal: {e}")))
}
