//! The buffers of one run of a [`FunctionPlan`]: one slot per plan buffer, each empty or
//! holding a value of exactly the buffer's declared dtype and evaluated shape.
//!
//! A buffer with an arena place ([`Place::Arena`]) is written where the layout puts it in the
//! session's arena; any other buffer a kernel or product writes gets an owned allocation
//! ([`RawBuf`]; the entry's outputs, which become the returned tensors).

use std::cell::RefCell;
use std::sync::Arc;

use mlc_ir::{Bindings, BufId, FunctionPlan, TensorType};

use super::arena::{FnLayout, Place};
use super::prepare::plan_err;
use super::storage::{RawBuf, Storage, View};
use crate::error::RuntimeError;
use crate::interp::{RunOptions, check_extent, eval_shape};
use crate::tensor::{Data, Tensor};

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
    layout: &'p FnLayout,
    /// The address of this plan's region in the arena.
    base: *mut u8,
    /// Allocations an owned buffer may reuse instead of a fresh one (see
    /// `crate::Session::run_into`).
    spare: &'p RefCell<Vec<Data>>,
    slots: Vec<Storage>,
}

impl<'p> BufferTable<'p> {
    /// Empty slots for `plan` laid out by `layout`, whose region starts at `base`.
    ///
    /// # Safety
    /// `base` is valid for reads and writes of `layout.peak` bytes for the table's life, and
    /// nothing else uses those bytes meanwhile except through this table's values.
    pub unsafe fn new(
        plan: &'p FunctionPlan,
        layout: &'p FnLayout,
        base: *mut u8,
        spare: &'p RefCell<Vec<Data>>,
    ) -> BufferTable<'p> {
        BufferTable {
            plan,
            layout,
            base,
            spare,
            slots: vec![Storage::Empty; plan.bufs.len()],
        }
    }

    /// The plan whose buffers these are.
    pub fn plan(&self) -> &'p FunctionPlan {
        self.plan
    }

    /// An owned buffer for `b`: a spare allocation of its size if there is one (its old
    /// elements are overwritten by the writer), else a zeroed one.
    fn owned(&self, b: BufId) -> RawBuf {
        let i = b as usize;
        let (dtype, shape) = (self.plan.bufs[i].ty.dtype, &self.layout.shapes[i]);
        let mut spare = self.spare.borrow_mut();
        let n: usize = shape.iter().product();
        if let Some(k) = spare.iter().position(|d| d.dtype() == dtype && d.len() == n)
            && let Ok(r) = RawBuf::reuse(dtype, shape, spare.swap_remove(k))
        {
            return r;
        }
        RawBuf::zeroed(dtype, shape)
    }

    /// The evaluated shape of buffer `b`.
    pub fn shape(&self, b: BufId) -> &'p [usize] {
        &self.layout.shapes[b as usize]
    }

    /// The evaluated shape of buffer `b`, shared.
    pub fn shape_arc(&self, b: BufId) -> Arc<[usize]> {
        self.layout.shapes[b as usize].clone()
    }

    /// The declared type of buffer `b`.
    pub fn ty(&self, b: BufId) -> &'p TensorType {
        &self.plan.bufs[b as usize].ty
    }

    /// `dtype[shape]` of buffer `b` as declared and evaluated, for messages.
    pub fn declared(&self, b: BufId) -> String {
        format!("{}{:?}", self.plan.bufs[b as usize].ty.dtype, self.shape(b))
    }

    /// Whether `s` has buffer `b`'s dtype and evaluated shape.
    pub fn fits(&self, b: BufId, s: &Storage) -> bool {
        s.type_of() == Some((self.plan.bufs[b as usize].ty.dtype, self.shape(b)))
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

    /// Stores a value that may live in memory about to be reused (a loop body's region): a
    /// view is copied into the buffer's own place (its arena place, or an owned buffer);
    /// shared values are kept as they are. `Err` with the value's type when it is not the
    /// buffer's type.
    pub fn store(&mut self, b: BufId, s: Storage) -> Result<(), String> {
        if !self.fits(b, &s) {
            return self.set(b, s);
        }
        match (self.layout.places[b as usize], &s) {
            (Place::Arena(_), _) | (Place::Own, Storage::View(_)) => {
                self.slots[b as usize] = Storage::Empty;
                let dst = self.write_ptr(b);
                let src = s.bytes().unwrap_or_default();
                if !src.is_empty() && !std::ptr::eq(src.as_ptr(), dst) {
                    // SAFETY: `dst` holds this buffer's bytes, as many as `src` (same type);
                    // `src` is another buffer's value, which does not overlap them.
                    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
                }
                Ok(())
            }
            (Place::Own, _) => self.set(b, s),
        }
    }

    /// The value of buffer `b`; an error if no step has written it.
    pub fn get(&self, b: BufId) -> Result<&Storage, RuntimeError> {
        match &self.slots[b as usize] {
            Storage::Empty => Err(plan_err(self.plan, format!("b{b} is read before it is written"))),
            s => Ok(s),
        }
    }

    /// Takes the value of buffer `b` out of its slot (for the outputs, at the end of a run).
    pub fn take(&mut self, b: BufId) -> Result<Storage, RuntimeError> {
        self.get(b)?;
        Ok(std::mem::take(&mut self.slots[b as usize]))
    }

    /// The value of buffer `b` as a host tensor; a value of any other kind is copied once and
    /// kept so.
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
            Storage::Host(t) => t.data().as_bytes().as_ptr().cast_mut(),
            Storage::Raw(r) => r.bytes().as_ptr().cast_mut(),
            Storage::View(v) => v.ptr(),
            Storage::Empty => unreachable!("`get` refuses empty slots"),
        })
    }

    /// The base address of buffer `b` for writing, valid until the slot changes: its place in
    /// the arena, or an owned allocation (zeroed) that this table alone holds. A value the
    /// slot already holds elsewhere is copied there first.
    pub fn write_ptr(&mut self, b: BufId) -> *mut u8 {
        let i = b as usize;
        let dtype = self.plan.bufs[i].ty.dtype;
        match self.layout.places[i] {
            Place::Arena(off) => {
                // SAFETY: the layout keeps `off + size` within the region (`new`'s contract).
                let ptr = unsafe { self.base.add(off) };
                match std::mem::take(&mut self.slots[i]) {
                    Storage::View(v) if v.ptr() == ptr => {
                        self.slots[i] = Storage::View(v);
                    }
                    old => {
                        // SAFETY: the arena bytes at `off` are this buffer's while it lives.
                        let v = unsafe { View::new(ptr, dtype, self.shape_arc(b)) };
                        if let Some(bytes) = old.bytes() {
                            let n = bytes.len().min(v.bytes().len());
                            // SAFETY: `old` is another live buffer's value or an owned one;
                            // either way it does not overlap this buffer's arena bytes.
                            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, n) };
                        }
                        self.slots[i] = Storage::View(v);
                    }
                }
                ptr
            }
            Place::Own => {
                let raw = match std::mem::take(&mut self.slots[i]) {
                    Storage::Raw(r) => r,
                    Storage::Empty => Arc::new(self.owned(b)),
                    Storage::Host(t) => Arc::new(RawBuf::from_tensor(&t)),
                    Storage::View(v) => Arc::new(RawBuf::from_bytes(dtype, &self.layout.shapes[i], v.bytes())),
                };
                let slot = &mut self.slots[i];
                *slot = Storage::Raw(raw);
                match slot {
                    Storage::Raw(r) => Arc::make_mut(r).as_mut_ptr(),
                    _ => unreachable!("the slot was just set"),
                }
            }
        }
    }

    /// Buffer `b` as `f32` elements for writing (see [`BufferTable::write_ptr`]), if that is its
    /// dtype.
    ///
    /// # Safety
    /// The slice must be dropped before anything else reads or writes buffer `b`, and no
    /// other buffer live now overlaps it (the layout guarantees it for buffers read by the
    /// same step, except in-place pairs, which only kernels have).
    pub unsafe fn f32_mut(&mut self, b: BufId) -> Option<&mut [f32]> {
        if self.plan.bufs[b as usize].ty.dtype != mlc_ir::DType::F32 {
            return None;
        }
        let n: usize = self.shape(b).iter().product();
        let ptr = self.write_ptr(b);
        if n == 0 {
            return Some(&mut []);
        }
        // SAFETY: `ptr` holds `n` f32s (aligned: arena places are 64-byte aligned, owned
        // buffers are `Vec<f32>`s); the caller's contract covers aliasing.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<f32>(), n) })
    }

    /// Drops the value of buffer `b`.
    pub fn free(&mut self, b: BufId) {
        self.slots[b as usize] = Storage::Empty;
    }
}
