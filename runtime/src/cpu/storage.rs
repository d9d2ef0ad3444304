//! Where a buffer's elements live during a run: a shared host [`Tensor`] (inputs, weights,
//! constants, results of reference ops) or a raw, 64-byte aligned byte block that kernels and
//! matrix products write (see [`RawBuf`]).
//!
//! Both are dense row-major arrays of the buffer's dtype; a kernel sees only a base address.
//! Bools are one byte, `0` or `1`, as Rust stores them.

use std::sync::Arc;

use half::{bf16, f16};
use mlc_ir::DType;

use crate::tensor::{Data, Tensor, shape_numel};

/// One cache line, the unit of raw allocations (so every buffer is 64-byte aligned).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A raw, 64-byte aligned buffer of `numel(shape)` elements of `dtype`.
#[derive(Clone)]
pub struct RawBuf {
    dtype: DType,
    shape: Vec<usize>,
    lines: Vec<Line>,
    len: usize,
}

impl std::fmt::Debug for RawBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawBuf({}{:?})", self.dtype, self.shape)
    }
}

impl RawBuf {
    /// A zero-filled buffer. The caller has checked the shape against the element limit.
    pub fn zeroed(dtype: DType, shape: &[usize]) -> RawBuf {
        let len = shape_numel(shape).saturating_mul(dtype.size_bytes());
        RawBuf {
            dtype,
            shape: shape.to_vec(),
            lines: vec![Line([0; 64]); len.div_ceil(64)],
            len,
        }
    }

    /// A copy of a tensor's elements.
    pub fn from_tensor(t: &Tensor) -> RawBuf {
        let mut r = RawBuf::zeroed(t.dtype(), t.shape());
        r.bytes_mut().copy_from_slice(data_bytes(t.data()));
        r
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements' bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `lines` holds at least `len` initialised bytes; `Line` is plain bytes.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<u8>(), self.len) }
    }

    /// The elements' bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// The base address (valid for `bytes().len()` bytes).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.lines.as_mut_ptr().cast::<u8>()
    }

    /// The elements as `f32`, if that is the dtype.
    pub fn as_f32(&self) -> Option<&[f32]> {
        (self.dtype == DType::F32).then(|| {
            // SAFETY: 64-byte aligned, `len` is a multiple of 4, every bit pattern is an f32.
            unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len / 4) }
        })
    }

    /// The elements as `f32`, writable, if that is the dtype.
    pub fn as_f32_mut(&mut self) -> Option<&mut [f32]> {
        (self.dtype == DType::F32).then(|| {
            // SAFETY: as in `as_f32`, and `self` is borrowed mutably.
            unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len / 4) }
        })
    }

    /// A host tensor with a copy of the elements (bools are any non-zero byte).
    pub fn to_tensor(&self) -> Tensor {
        let b = self.bytes();
        fn words<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
            b.chunks_exact(N).map(|c| f(c.try_into().unwrap_or([0; N]))).collect()
        }
        let data = match self.dtype {
            DType::F32 => Data::F32(words(b, f32::from_ne_bytes)),
            DType::F16 => Data::F16(words(b, |w| f16::from_bits(u16::from_ne_bytes(w)))),
            DType::BF16 => Data::BF16(words(b, |w| bf16::from_bits(u16::from_ne_bytes(w)))),
            DType::I32 => Data::I32(words(b, i32::from_ne_bytes)),
            DType::I64 => Data::I64(words(b, i64::from_ne_bytes)),
            DType::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
        };
        // The element count matches the shape by construction.
        Tensor::new(self.shape.clone(), data).unwrap_or_else(|_| Tensor::zeros(self.dtype, &self.shape))
    }
}

/// The bytes of a tensor's elements.
pub fn data_bytes(d: &Data) -> &[u8] {
    fn view<T>(v: &[T]) -> &[u8] {
        // SAFETY: the element types below are plain data without padding (`bool` is one byte
        // holding 0 or 1, `f16`/`bf16` are transparent `u16`s); the view borrows `v`.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    }
    match d {
        Data::F32(v) => view(v),
        Data::F16(v) => view(v),
        Data::BF16(v) => view(v),
        Data::I32(v) => view(v),
        Data::I64(v) => view(v),
        Data::Bool(v) => view(v),
    }
}

/// The contents of a buffer slot.
#[derive(Clone, Debug, Default)]
pub enum Storage {
    /// Not (yet, or no longer) holding a value.
    #[default]
    Empty,
    /// A shared, read-only host tensor.
    Host(Arc<Tensor>),
    /// A raw buffer; written in place when this is its only reference (else copied first).
    Raw(Arc<RawBuf>),
}

impl Storage {
    /// The dtype and shape of the value, if any.
    pub fn type_of(&self) -> Option<(DType, &[usize])> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some((t.dtype(), t.shape())),
            Storage::Raw(r) => Some((r.dtype(), r.shape())),
        }
    }

    /// The value's bytes.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some(data_bytes(t.data())),
            Storage::Raw(r) => Some(r.bytes()),
        }
    }

    /// The value as `f32` elements, if it holds `f32`s.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => t.as_f32(),
            Storage::Raw(r) => r.as_f32(),
        }
    }

    /// The value as a host tensor (shared when it is one, else copied).
    pub fn to_tensor(&self) -> Option<Arc<Tensor>> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some(t.clone()),
            Storage::Raw(r) => Some(Arc::new(r.to_tensor())),
        }
    }

    /// The value as an owned host tensor (moved out when not shared).
    pub fn into_tensor(self) -> Option<Tensor> {
        match self {
            Storage::Empty => None,
            Storage::Host(t) => Some(Arc::unwrap_or_clone(t)),
            Storage::Raw(r) => Some(r.to_tensor()),
        }
    }
}
