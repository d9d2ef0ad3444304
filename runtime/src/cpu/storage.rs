//! Where a buffer's elements live during a run:
//!
//! - a shared host [`Tensor`] (weights, constants, results of reference ops);
//! - a [`RawBuf`], an owned typed allocation that kernels and products write (the entry's
//!   outputs, which become the returned tensors without a copy, and the rare buffer the arena
//!   does not hold);
//! - a [`View`]: elements that someone else owns for the whole run, the session's arena (see
//!   [`super::arena`]) or a caller's input tensor.
//!
//! All are dense row-major arrays of the buffer's dtype; a kernel sees only a base address.
//! Bools are one byte, `0` or `1`, as Rust stores them.

use std::sync::Arc;

use half::{bf16, f16};
use mlc_ir::DType;

use crate::tensor::{Data, Tensor, shape_numel};

/// An owned buffer of `numel(shape)` elements of `dtype`, stored as the [`Data`] a tensor
/// holds, so that it becomes a [`Tensor`] without a copy.
#[derive(Clone)]
pub struct RawBuf {
    shape: Vec<usize>,
    data: Data,
}

impl std::fmt::Debug for RawBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawBuf({}{:?})", self.data.dtype(), self.shape)
    }
}

impl RawBuf {
    /// A zero-filled buffer. The caller has checked the shape against the element limit.
    pub fn zeroed(dtype: DType, shape: &[usize]) -> RawBuf {
        RawBuf {
            shape: shape.to_vec(),
            data: Data::zeros(dtype, shape_numel(shape)),
        }
    }

    /// A buffer of `shape` reusing `data`'s allocation (its elements are left as they are:
    /// the writer overwrites every one), if it holds `numel(shape)` elements of `dtype`.
    pub fn reuse(dtype: DType, shape: &[usize], data: Data) -> Result<RawBuf, Data> {
        if data.dtype() == dtype && data.len() == shape_numel(shape) {
            Ok(RawBuf {
                shape: shape.to_vec(),
                data,
            })
        } else {
            Err(data)
        }
    }

    /// A copy of `bytes`, which hold `numel(shape)` elements of `dtype`.
    pub fn from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> RawBuf {
        let mut r = RawBuf::zeroed(dtype, shape);
        let dst = r.bytes_mut();
        let n = dst.len().min(bytes.len());
        dst[..n].copy_from_slice(&bytes[..n]);
        r
    }

    /// A copy of a tensor's elements.
    pub fn from_tensor(t: &Tensor) -> RawBuf {
        RawBuf {
            shape: t.shape().to_vec(),
            data: t.data().clone(),
        }
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements' bytes.
    pub fn bytes(&self) -> &[u8] {
        self.data.as_bytes()
    }

    /// The elements' bytes, writable. Writers must store only valid values of the dtype
    /// (for bools, see [`RawBuf::into_tensor`]).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        fn view<T>(v: &mut [T]) -> &mut [u8] {
            // SAFETY: plain data without padding, as in `Data::as_bytes`; the view borrows `v`.
            unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        }
        match &mut self.data {
            Data::F32(v) => view(v),
            Data::F16(v) => view(v),
            Data::BF16(v) => view(v),
            Data::I32(v) => view(v),
            Data::I64(v) => view(v),
            Data::Bool(v) => {
                // A `bool` is a byte holding 0 or 1; the JIT stores exactly these.
                view(v)
            }
        }
    }

    /// The base address (valid for `bytes().len()` bytes).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.bytes_mut().as_mut_ptr()
    }

    /// A host tensor with a copy of the elements.
    pub fn to_tensor(&self) -> Tensor {
        self.clone().into_tensor()
    }

    /// The buffer as a host tensor, without a copy.
    pub fn into_tensor(self) -> Tensor {
        let shape = self.shape;
        // The element count matches the shape by construction.
        let dtype = self.data.dtype();
        Tensor::new(shape.clone(), self.data).unwrap_or_else(|_| Tensor::zeros(dtype, &shape))
    }
}

/// Elements owned elsewhere for the whole run: a region of the session's arena, or a caller's
/// input. Cloning a view copies the address, not the elements.
#[derive(Clone, Debug)]
pub struct View {
    ptr: *mut u8,
    len: usize,
    dtype: DType,
    shape: Arc<[usize]>,
}

impl View {
    /// A view of `numel(shape)` elements of `dtype` at `ptr`.
    ///
    /// # Safety
    /// `ptr` is valid for reads (and for writes, if anything writes through the view) of
    /// `numel(shape) * dtype.size_bytes()` bytes for as long as the view or a clone of it is
    /// used, and holds valid values of `dtype` whenever it is read.
    pub unsafe fn new(ptr: *mut u8, dtype: DType, shape: Arc<[usize]>) -> View {
        View {
            ptr,
            len: shape_numel(&shape).saturating_mul(dtype.size_bytes()),
            dtype,
            shape,
        }
    }

    /// A view of a tensor's elements, for reading only.
    ///
    /// # Safety
    /// The tensor outlives every use of the view and its clones.
    pub unsafe fn of_tensor(t: &Tensor, shape: Arc<[usize]>) -> View {
        let bytes = t.data().as_bytes();
        View {
            ptr: bytes.as_ptr().cast_mut(),
            len: bytes.len(),
            dtype: t.dtype(),
            shape,
        }
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The elements' bytes.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `new`'s contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A host tensor holding a copy of `bytes`, `numel(shape)` elements of `dtype` (bools are any
/// non-zero byte).
pub fn tensor_from_bytes(dtype: DType, shape: &[usize], b: &[u8]) -> Tensor {
    /// The elements of `b` as `T`s, copied in one go.
    fn copy<T: Copy + Default>(b: &[u8]) -> Vec<T> {
        let n = b.len() / std::mem::size_of::<T>();
        let mut v = vec![T::default(); n];
        // SAFETY: `v` holds `n` elements, `n * size_of::<T>() <= b.len()` bytes; `T` is one of
        // the plain number types below, for which every bit pattern is a value.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), v.as_mut_ptr().cast::<u8>(), n * std::mem::size_of::<T>()) };
        v
    }
    let data = match dtype {
        DType::F32 => Data::F32(copy::<f32>(b)),
        DType::F16 => Data::F16(copy::<f16>(b)),
        DType::BF16 => Data::BF16(copy::<bf16>(b)),
        DType::I32 => Data::I32(copy::<i32>(b)),
        DType::I64 => Data::I64(copy::<i64>(b)),
        DType::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
    };
    // The element count matches the shape by construction.
    Tensor::new(shape.to_vec(), data).unwrap_or_else(|_| Tensor::zeros(dtype, shape))
}

/// The contents of a buffer slot.
#[derive(Clone, Debug, Default)]
pub enum Storage {
    /// Not (yet, or no longer) holding a value.
    #[default]
    Empty,
    /// A shared, read-only host tensor.
    Host(Arc<Tensor>),
    /// An owned buffer; written in place when this is its only reference (else copied first).
    Raw(Arc<RawBuf>),
    /// Elements in the session's arena or a caller's input (see [`View`]).
    View(View),
}

impl Storage {
    /// The dtype and shape of the value, if any.
    pub fn type_of(&self) -> Option<(DType, &[usize])> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some((t.dtype(), t.shape())),
            Storage::Raw(r) => Some((r.dtype(), r.shape())),
            Storage::View(v) => Some((v.dtype, &v.shape)),
        }
    }

    /// The value's bytes.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some(t.data().as_bytes()),
            Storage::Raw(r) => Some(r.bytes()),
            Storage::View(v) => Some(v.bytes()),
        }
    }

    /// The value as `f32` elements, if it holds `f32`s.
    pub fn as_f32(&self) -> Option<&[f32]> {
        let (DType::F32, _) = self.type_of()? else {
            return None;
        };
        let b = self.bytes()?;
        if b.is_empty() {
            return Some(&[]);
        }
        // SAFETY: the bytes hold `b.len() / 4` f32s (every bit pattern is one); tensors' and
        // raw buffers' bytes come from `Vec<f32>`s and arena views are 64-byte aligned, so the
        // address is aligned for f32 except for caller views, which are `Vec<f32>`s too.
        debug_assert!(b.as_ptr().cast::<f32>().is_aligned());
        Some(unsafe { std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len() / 4) })
    }

    /// The value as a host tensor (shared when it is one, else copied).
    pub fn to_tensor(&self) -> Option<Arc<Tensor>> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some(t.clone()),
            Storage::Raw(r) => Some(Arc::new(r.to_tensor())),
            Storage::View(v) => Some(Arc::new(tensor_from_bytes(v.dtype, &v.shape, v.bytes()))),
        }
    }

    /// The value as an owned host tensor (moved out when not shared).
    pub fn into_tensor(self) -> Option<Tensor> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some(Arc::unwrap_or_clone(t)),
            Storage::Raw(r) => Some(Arc::unwrap_or_clone(r).into_tensor()),
            Storage::View(v) => Some(tensor_from_bytes(v.dtype, &v.shape, v.bytes())),
        }
    }
}
