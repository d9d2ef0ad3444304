//! `Step::Loop`: the semantics of the Graph IR's `loop` (see `mlc_ir::LoopOp`) over plans.
//!
//! `trips` iterations (at most `max_trips`), each running the body plan on the index, the
//! carried and the captured values; a true stop flag ends the loop after its iteration. The
//! results are the final carried values, then each emitted value stacked along a new leading
//! axis of length `trips`, zero in the rows of iterations that did not run.

use std::sync::Arc;

use mlc_ir::{DType, Step};

use super::buffers::{BufferTable, eval_buf_shapes};
use super::exec::Exec;
use super::prepare::PreparedFn;
use super::storage::{RawBuf, Storage};
use crate::error::RuntimeError;
use crate::interp::format_origin;
use crate::tensor::Tensor;

impl Exec<'_> {
    pub(super) fn run_loop(&self, table: &mut BufferTable, step: &Step, prep: &PreparedFn) -> Result<(), RuntimeError> {
        let Step::Loop {
            trips,
            max_trips,
            n_carried,
            has_stop,
            n_emit: _,
            operands,
            outputs,
            body,
            origin,
        } = step
        else {
            unreachable!("called for loop steps only");
        };
        let n_carried = *n_carried;
        let at = format_origin(origin);
        let err = |message: String| RuntimeError::Op {
            op: "loop",
            at: at.clone(),
            message,
        };
        let t = trips.eval(self.bindings).map_err(|symbol| RuntimeError::UnboundDim {
            symbol,
            context: format!("`loop`{at}"),
        })?;
        if t < 0 {
            return Err(err(format!("the trip count {trips} evaluates to {t}")));
        }
        if t as u64 > *max_trips {
            return Err(RuntimeError::TooManyTrips {
                at,
                trips: t,
                max: *max_trips,
            });
        }
        let trips = t as usize;
        let shapes = eval_buf_shapes(body, self.bindings, self.opts)?;
        let stop = usize::from(*has_stop);

        // The stacked emits, allocated up front; each body emit must be one row of its stack.
        let mut stacks = Vec::new();
        for (e, &out) in outputs[n_carried..].iter().enumerate() {
            let (_, src) = body.outputs[n_carried + stop + e];
            let row_ty = &body.bufs[src as usize].ty;
            let row_shape = &shapes[src as usize];
            let mut expected = vec![trips];
            expected.extend(row_shape);
            if row_ty.dtype != table.ty(out).dtype || expected != table.shape(out) {
                return Err(err(format!(
                    "emit {e} is {}{row_shape:?} per iteration, but its result is declared {}",
                    row_ty.dtype,
                    table.declared(out)
                )));
            }
            stacks.push(RawBuf::zeroed(row_ty.dtype, &expected));
        }

        let mut carried: Vec<Storage> = operands[..n_carried]
            .iter()
            .map(|&b| table.get(b).cloned())
            .collect::<Result<_, _>>()?;
        let captured: Vec<Storage> = operands[n_carried..]
            .iter()
            .map(|&b| table.get(b).cloned())
            .collect::<Result<_, _>>()?;
        for i in 0..trips {
            let mut args = Vec::with_capacity(body.inputs.len());
            args.push(Storage::Host(Arc::new(Tensor::scalar_i64(i as i64))));
            args.append(&mut carried);
            args.extend(captured.iter().cloned());
            for (k, (&b, a)) in body.inputs.iter().zip(&args).enumerate() {
                let fits = a.type_of() == Some((body.bufs[b as usize].ty.dtype, shapes[b as usize].as_slice()));
                if !fits {
                    let (d, s) = a.type_of().unwrap_or((DType::Bool, &[]));
                    return Err(err(format!(
                        "body input {k} expects {}{:?}, got {d}{s:?} in iteration {i}",
                        body.bufs[b as usize].ty.dtype, shapes[b as usize]
                    )));
                }
            }
            let mut outs = self.run_function(body, prep, &shapes, args)?;
            let emitted = outs.split_off(n_carried + stop);
            let flag = outs.split_off(n_carried);
            carried = outs;
            for (stack, e) in stacks.iter_mut().zip(&emitted) {
                let row = e.bytes().unwrap_or_default();
                let dst = stack.bytes_mut();
                dst[i * row.len()..(i + 1) * row.len()].copy_from_slice(row);
            }
            if let Some(f) = flag.first() {
                match (f.type_of(), f.bytes()) {
                    (Some((DType::Bool, [])), Some([b])) => {
                        if *b != 0 {
                            break;
                        }
                    }
                    _ => {
                        let (d, s) = f.type_of().unwrap_or((DType::Bool, &[]));
                        return Err(err(format!("the stop flag must be bool[], got {d}{s:?}")));
                    }
                }
            }
        }
        for (&b, s) in outputs.iter().zip(
            carried
                .into_iter()
                .chain(stacks.into_iter().map(|r| Storage::Raw(Arc::new(r)))),
        ) {
            table
                .set(b, s)
                .map_err(|found| self.result_err("loop", origin, table, b, found))?;
        }
        Ok(())
    }
}
