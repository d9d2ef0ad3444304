//! `Step::Loop`: the semantics of the Graph IR's `loop` (see `mlc_ir::LoopOp`) over plans.
//!
//! `trips` iterations (at most `max_trips`), each running the body plan on the index, the
//! carried and the captured values; a true stop flag ends the loop after its iteration. The
//! results are the final carried values, then each emitted value stacked along a new leading
//! axis of length `trips`, zero in the rows of iterations that did not run.

use std::sync::Arc;

use mlc_ir::{DType, Step};

use super::arena::LoopLayout;
use super::buffers::{BufferTable, eval_buf_shapes};
use super::exec::Exec;
use super::prepare::{PreparedFn, plan_err};
use super::storage::{RawBuf, Storage};
use crate::error::RuntimeError;
use crate::interp::format_origin;
use crate::tensor::Tensor;

impl Exec<'_> {
    pub(super) fn run_loop(
        &self,
        table: &mut BufferTable,
        step: &Step,
        prep: &PreparedFn,
        layout: &LoopLayout,
    ) -> Result<(), RuntimeError> {
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
        if t as u64 > self.opts.max_loop_trips {
            return Err(RuntimeError::TripLimit {
                at,
                trips: t,
                limit: self.opts.max_loop_trips,
            });
        }
        let trips = t as usize;
        let (body_layout, bases) = match layout {
            LoopLayout::Ready { body, bases } => (body, *bases),
            LoopLayout::Failed => {
                // Evaluating the body's shapes failed when the layout was made: report why.
                eval_buf_shapes(body, self.bindings, self.opts)?;
                return Err(plan_err(body, "the body's shapes could not be evaluated"));
            }
        };
        let shapes = &body_layout.shapes;
        let stop = usize::from(*has_stop);

        // Each body emit must be one row of its stack.
        let mut row_bytes = Vec::new();
        for (e, &out) in outputs[n_carried..].iter().enumerate() {
            let (_, src) = body.outputs[n_carried + stop + e];
            let row_ty = &body.bufs[src as usize].ty;
            let row_shape = &shapes[src as usize];
            let mut expected = vec![trips];
            expected.extend(row_shape.iter());
            if row_ty.dtype != table.ty(out).dtype || expected != table.shape(out) {
                return Err(err(format!(
                    "emit {e} is {}{row_shape:?} per iteration, but its result is declared {}",
                    row_ty.dtype,
                    table.declared(out)
                )));
            }
            row_bytes.push(row_shape.iter().product::<usize>() * row_ty.dtype.size_bytes());
        }

        let mut carried: Vec<Storage> = operands[..n_carried]
            .iter()
            .map(|&b| table.get(b).cloned())
            .collect::<Result<_, _>>()?;
        let captured: Vec<Storage> = operands[n_carried..]
            .iter()
            .map(|&b| table.get(b).cloned())
            .collect::<Result<_, _>>()?;
        // The stacks are the step's outputs, written row by row in place. Their places do not
        // overlap the operands (both are live at this step) nor the body's regions.
        let stacks: Vec<*mut u8> = outputs[n_carried..].iter().map(|&b| table.write_ptr(b)).collect();
        let mut ran = 0;
        for i in 0..trips {
            let region = bases[i % 2];
            // SAFETY: the layout reserved `peak` bytes at both bases.
            let lo = unsafe { self.arena.add(region) } as usize;
            let hi = lo + body_layout.peak;
            let mut args = Vec::with_capacity(body.inputs.len());
            args.push(Storage::Host(Arc::new(Tensor::scalar_i64(i as i64))));
            for c in carried.drain(..) {
                // A value carried unchanged since two iterations ago lives in the region this
                // iteration writes: move it out first (see `arena`'s documentation).
                let stale = match &c {
                    Storage::View(v) => {
                        let p = v.ptr() as usize;
                        let len = v.bytes().len();
                        len > 0 && p < hi && lo < p + len
                    }
                    _ => false,
                };
                args.push(if stale {
                    let (d, s) = c.type_of().unwrap_or((DType::Bool, &[]));
                    Storage::Raw(Arc::new(RawBuf::from_bytes(d, s, c.bytes().unwrap_or_default())))
                } else {
                    c
                });
            }
            args.extend(captured.iter().cloned());
            for (k, (&b, a)) in body.inputs.iter().zip(&args).enumerate() {
                let fits = a.type_of() == Some((body.bufs[b as usize].ty.dtype, &*shapes[b as usize]));
                if !fits {
                    let (d, s) = a.type_of().unwrap_or((DType::Bool, &[]));
                    return Err(err(format!(
                        "body input {k} expects {}{:?}, got {d}{s:?} in iteration {i}",
                        body.bufs[b as usize].ty.dtype, shapes[b as usize]
                    )));
                }
            }
            // SAFETY: the region at `region` is this loop's, used by no other run of the body
            // now; no argument points into it (the carried values were checked above, the
            // captured ones and the index are not in any body region).
            let mut outs = unsafe { self.run_function(body, prep, body_layout, region, args)? };
            let emitted = outs.split_off(n_carried + stop);
            let flag = outs.split_off(n_carried);
            carried = outs;
            for ((&dst, &n), e) in stacks.iter().zip(&row_bytes).zip(&emitted) {
                let row = e.bytes().unwrap_or_default();
                if n > 0 && row.len() == n {
                    // SAFETY: the stack holds `trips` rows of `n` bytes; the row is another
                    // buffer's value.
                    unsafe { std::ptr::copy_nonoverlapping(row.as_ptr(), dst.add(i * n), n) };
                }
            }
            ran = i + 1;
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
        // Rows of iterations that did not run are zero.
        for (&dst, &n) in stacks.iter().zip(&row_bytes) {
            if n > 0 && ran < trips {
                // SAFETY: as for the rows above.
                unsafe { std::ptr::write_bytes(dst.add(ran * n), 0, (trips - ran) * n) };
            }
        }
        for (&b, s) in outputs[..n_carried].iter().zip(carried) {
            table
                .store(b, s)
                .map_err(|found| self.result_err("loop", origin, table, b, found))?;
        }
        Ok(())
    }
}
