//! The buffers of one run of a [`FunctionPlan`]: one slot per plan buffer, each empty or
//! holding a value of exactly the buffer's declared dtype and evaluated shape.
//!
//! Storage is one allocation per written buffer for now ([`RawBuf`]); a memory planner that
//! places buffers in one arena by liveness replaces [`BufferTable::write_ptr`]'s allocation
//! and nothing else.

use std::sync::Arc;

use mlc_ir::{Bindings, BufId, FunctionPlan, TensorType};

use super::prepare::plan_err;
use super::storage::{RawBuf, Storage, data_bytes};
use crate::error::RuntimeError;
use crate::interp::{RunOptions, check_extent, eval_shape};
use crate::tensor::Tensor;

/// Evaluates the shape of every buffer of `f` with the run's bindings, checking each against
/// the element limit.
pub fn eval_buf_shapes(
    f: &FunctionPlan,
    bindings: &Bindings,
    opts: &RunOptions,
) -> Result<Vec<Vec<usize>>, RuntimeError> {
    f.bufs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let what = if b.name.is_empty() {
                format!("buffer b{i} of `{}`", f.name)
            } else {
                format!("buffer b{i} (`{}`) of `{}`", b.name, f.name)
            };
            let shape = eval_shape(&b.ty.shape, bindings, &what)?;
            check_extent(&shape, opts.max_elements, "buffer", &format!(" `{what}`"))?;
            Ok(shape)
        })
        .collect()
}

/// The slots of one run of a plan.
pub struct BufferTable<'p> {
    plan: &'p FunctionPlan,
    shapes: &'p [Vec<usize>],
    slots: Vec<Storage>,
}

impl<'p> BufferTable<'p> {
    /// Empty slots for `plan`, whose buffers have the evaluated `shapes`.
    pub fn new(plan: &'p FunctionPlan, shapes: &'p [Vec<usize>]) -> BufferTable<'p> {
        BufferTable {
            plan,
            shapes,
            slots: vec![Storage::Empty; plan.bufs.len()],
        }
    }

    /// The evaluated shape of buffer `b`.
    pub fn shape(&self, b: BufId) -> &'p [usize] {
        &self.shapes[b as usize]
    }

    /// The declared type of buffer `b`.
    pub fn ty(&self, b: BufId) -> &'p TensorType {
        &self.plan.bufs[b as usize].ty
    }

    /// `dtype[shape]` of buffer `b` as declared and evaluated, for messages.
    pub fn declared(&self, b: BufId) -> String {
        format!("{}{:?}", self.plan.bufs[b as usize].ty.dtype, self.shapes[b as usize])
    }

    /// Whether `s` has buffer `b`'s dtype and evaluated shape.
    pub fn fits(&self, b: BufId, s: &Storage) -> bool {
        s.type_of() == Some((self.plan.bufs[b as usize].ty.dtype, self.shapes[b as usize].as_slice()))
    }

    /// Stores a value; `Err` with the value's type when it is not the buffer's type.
    pub fn set(&mut self, b: BufId, s: Storage) -> Result<(), String> {
        if !self.fits(b, &s) {
            return Err(match s.type_of() {
                Some((d, shape)) => format!("{d}{shape:?}"),
                None => "nothing".to_string(),
            });
        }
        self.slots[b as usize] = s;
        Ok(())
    }

    /// The value of buffer `b`; an error if no step has written it.
    pub fn get(&self, b: BufId) -> Result<&Storage, RuntimeError> {
        match &self.slots[b as usize] {
            Storage::Empty => Err(plan_err(self.plan, format!("b{b} is read before it is written"))),
            s => Ok(s),
        }
    }

    /// The value of buffer `b` as a host tensor; a raw buffer is converted once and kept so.
    pub fn tensor(&mut self, b: BufId) -> Result<Arc<Tensor>, RuntimeError> {
        let t = match self.get(b)? {
            Storage::Host(t) => return Ok(t.clone()),
            s => s
                .to_tensor()
                .ok_or_else(|| plan_err(self.plan, format!("b{b} has no value")))?,
        };
        self.slots[b as usize] = Storage::Host(t.clone());
        Ok(t)
    }

    /// The base address of buffer `b` for reading. Valid until the slot changes.
    pub fn read_ptr(&self, b: BufId) -> Result<*mut u8, RuntimeError> {
        Ok(match self.get(b)? {
            Storage::Host(t) => data_bytes(t.data()).as_ptr().cast_mut(),
            Storage::Raw(r) => r.bytes().as_ptr().cast_mut(),
            Storage::Empty => unreachable!("`get` refuses empty slots"),
        })
    }

    /// Buffer `b` as a raw buffer this table alone owns, for writing: allocated (zeroed) if
    /// empty, copied if it holds a host tensor or a shared raw buffer.
    pub fn raw_mut(&mut self, b: BufId) -> &mut RawBuf {
        let i = b as usize;
        let slot = &mut self.slots[i];
        let raw = match std::mem::take(slot) {
            Storage::Empty => Arc::new(RawBuf::zeroed(self.plan.bufs[i].ty.dtype, &self.shapes[i])),
            Storage::Host(t) => Arc::new(RawBuf::from_tensor(&t)),
            Storage::Raw(r) => r,
        };
        *slot = Storage::Raw(raw);
        match slot {
            Storage::Raw(r) => Arc::make_mut(r),
            _ => unreachable!("the slot was just set"),
        }
    }

    /// The base address of buffer `b` for writing (see [`BufferTable::raw_mut`]). Valid until
    /// the slot changes.
    pub fn write_ptr(&mut self, b: BufId) -> *mut u8 {
        self.raw_mut(b).as_mut_ptr()
    }

    /// Drops the value of buffer `b`.
    pub fn free(&mut self, b: BufId) {
        self.slots[b as usize] = Storage::Empty;
    }
}
