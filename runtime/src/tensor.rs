//! Host tensors with honest storage per dtype.

use half::{bf16, f16};
use mlc_ir::DType;

use crate::error::RuntimeError;

/// The elements of a [`Tensor`], row-major, stored in the tensor's own dtype.
///
/// Half-precision dtypes are stored as `half` values, so a bf16 tensor really holds bf16
/// numbers; the interpreter computes in `f32` and rounds on store.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// `f32` elements.
    F32(Vec<f32>),
    /// IEEE half-precision elements.
    F16(Vec<f16>),
    /// bfloat16 elements.
    BF16(Vec<bf16>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `i64` elements.
    I64(Vec<i64>),
    /// `bool` elements.
    Bool(Vec<bool>),
}

impl Data {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F16(v) => v.len(),
            Data::BF16(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// The elements' bytes (native endian; bools are one byte, `0` or `1`).
    pub fn as_bytes(&self) -> &[u8] {
        fn view<T>(v: &[T]) -> &[u8] {
            // SAFETY: the element types below are plain data without padding (`bool` is one byte
            // holding 0 or 1, `f16`/`bf16` are transparent `u16`s); the view borrows `v`.
            unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        }
        match self {
            Data::F32(v) => view(v),
            Data::F16(v) => view(v),
            Data::BF16(v) => view(v),
            Data::I32(v) => view(v),
            Data::I64(v) => view(v),
            Data::Bool(v) => view(v),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zeros (or `false`) of the given dtype. A large buffer is backed by huge pages: the
    /// zeroed allocation is mapped lazily (`calloc`), so the advice comes before its first write,
    /// and whoever fills it (a kernel writing an entry's output) takes a few hundred page faults
    /// instead of tens of thousands.
    pub fn zeros(dtype: DType, n: usize) -> Data {
        let data = match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F16 => Data::F16(vec![f16::ZERO; n]),
            DType::BF16 => Data::BF16(vec![bf16::ZERO; n]),
            DType::I32 => Data::I32(vec![0; n]),
            DType::I64 => Data::I64(vec![0; n]),
            DType::Bool => Data::Bool(vec![false; n]),
        };
        let bytes = data.as_bytes();
        mlc_kernels::memory::advise_huge_pages(bytes.as_ptr() as usize, bytes.len());
        data
    }

    /// The elements at the given flat positions, in order. `None` if a position is out of range.
    pub fn take(&self, idx: &[usize]) -> Option<Data> {
        fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Option<Vec<T>> {
            idx.iter().map(|&i| v.get(i).copied()).collect()
        }
        Some(match self {
            Data::F32(v) => Data::F32(pick(v, idx)?),
            Data::F16(v) => Data::F16(pick(v, idx)?),
            Data::BF16(v) => Data::BF16(pick(v, idx)?),
            Data::I32(v) => Data::I32(pick(v, idx)?),
            Data::I64(v) => Data::I64(pick(v, idx)?),
            Data::Bool(v) => Data::Bool(pick(v, idx)?),
        })
    }

    /// Copies `len` elements of `src` from position `from` to position `at` of `self`. `None` if
    /// the dtypes differ or either run is out of range.
    pub fn copy_run(&mut self, at: usize, src: &Data, from: usize, len: usize) -> Option<()> {
        fn run<T: Copy>(dst: &mut [T], at: usize, src: &[T], from: usize, len: usize) -> Option<()> {
            let d = dst.get_mut(at..at.checked_add(len)?)?;
            d.copy_from_slice(src.get(from..from.checked_add(len)?)?);
            Some(())
        }
        match (self, src) {
            (Data::F32(d), Data::F32(s)) => run(d, at, s, from, len),
            (Data::F16(d), Data::F16(s)) => run(d, at, s, from, len),
            (Data::BF16(d), Data::BF16(s)) => run(d, at, s, from, len),
            (Data::I32(d), Data::I32(s)) => run(d, at, s, from, len),
            (Data::I64(d), Data::I64(s)) => run(d, at, s, from, len),
            (Data::Bool(d), Data::Bool(s)) => run(d, at, s, from, len),
            _ => None,
        }
    }

    /// The concatenation of the elements of `parts`. `None` if their dtypes differ or `parts`
    /// is empty.
    pub fn concat(parts: &[&Data]) -> Option<Data> {
        let first = parts.first()?;
        let mut out = Data::zeros(first.dtype(), 0);
        for p in parts {
            match (&mut out, p) {
                (Data::F32(o), Data::F32(v)) => o.extend_from_slice(v),
                (Data::F16(o), Data::F16(v)) => o.extend_from_slice(v),
                (Data::BF16(o), Data::BF16(v)) => o.extend_from_slice(v),
                (Data::I32(o), Data::I32(v)) => o.extend_from_slice(v),
                (Data::I64(o), Data::I64(v)) => o.extend_from_slice(v),
                (Data::Bool(o), Data::Bool(v)) => o.extend_from_slice(v),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// A dense, row-major host tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    data: Data,
}

/// Number of elements of a shape (saturating, so a huge shape never wraps to a small count).
pub fn shape_numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

impl Tensor {
    /// A tensor from its shape and data; fails if the element count does not match the shape,
    /// or if the product of the axes (counting empty axes as 1) overflows `usize`.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, RuntimeError> {
        let extent = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d.max(1)));
        let expected = if extent.is_some() {
            shape_numel(&shape)
        } else {
            usize::MAX
        };
        if data.len() != expected {
            return Err(RuntimeError::BadTensor {
                shape,
                expected,
                found: data.len(),
            });
        }
        Ok(Tensor {
            dtype: data.dtype(),
            shape,
            data,
        })
    }

    fn build(shape: &[usize], data: Data) -> Tensor {
        match Tensor::new(shape.to_vec(), data) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// An `f32` tensor. Panics if `values.len()` is not the product of `shape`.
    pub fn from_f32(shape: &[usize], values: Vec<f32>) -> Tensor {
        Tensor::build(shape, Data::F32(values))
    }

    /// An `f16` tensor. Panics if `values.len()` is not the product of `shape`.
    pub fn from_f16(shape: &[usize], values: Vec<f16>) -> Tensor {
        Tensor::build(shape, Data::F16(values))
    }

    /// A `bf16` tensor. Panics if `values.len()` is not the product of `shape`.
    pub fn from_bf16(shape: &[usize], values: Vec<bf16>) -> Tensor {
        Tensor::build(shape, Data::BF16(values))
    }

    /// An `i32` tensor. Panics if `values.len()` is not the product of `shape`.
    pub fn from_i32(shape: &[usize], values: Vec<i32>) -> Tensor {
        Tensor::build(shape, Data::I32(values))
    }

    /// An `i64` tensor. Panics if `values.len()` is not the product of `shape`.
    pub fn from_i64(shape: &[usize], values: Vec<i64>) -> Tensor {
        Tensor::build(shape, Data::I64(values))
    }

    /// A `bool` tensor. Panics if `values.len()` is not the product of `shape`.
    pub fn from_bool(shape: &[usize], values: Vec<bool>) -> Tensor {
        Tensor::build(shape, Data::Bool(values))
    }

    /// A tensor of zeros (`false` for bool). Panics if the shape is too large to allocate.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        Tensor::build(shape, Data::zeros(dtype, shape_numel(shape)))
    }

    /// An `f32` scalar (rank 0).
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor::from_f32(&[], vec![v])
    }

    /// An `i32` scalar (rank 0).
    pub fn scalar_i32(v: i32) -> Tensor {
        Tensor::from_i32(&[], vec![v])
    }

    /// An `i64` scalar (rank 0).
    pub fn scalar_i64(v: i64) -> Tensor {
        Tensor::from_i64(&[], vec![v])
    }

    /// A `bool` scalar (rank 0).
    pub fn scalar_bool(v: bool) -> Tensor {
        Tensor::from_bool(&[], vec![v])
    }

    /// Values given as `f64`, converted to `dtype` as by [`Tensor::cast`] (floats round to
    /// nearest even, integers truncate toward zero and saturate, NaN becomes 0, bool is `!= 0`).
    /// Panics if `values.len()` is not the product of `shape`.
    pub fn from_f64_as(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
        let data = match dtype {
            DType::F32 => Data::F32(values.iter().map(|&x| x as f32).collect()),
            DType::F16 => Data::F16(values.iter().map(|&x| f16::from_f64(x)).collect()),
            DType::BF16 => Data::BF16(values.iter().map(|&x| bf16::from_f64(x)).collect()),
            DType::I32 => Data::I32(values.iter().map(|&x| x as i32).collect()),
            DType::I64 => Data::I64(values.iter().map(|&x| x as i64).collect()),
            DType::Bool => Data::Bool(values.iter().map(|&x| x != 0.0).collect()),
        };
        Tensor::build(shape, data)
    }

    /// Values given as `f32`, converted to `dtype` as by [`Tensor::cast`].
    /// Panics if `values.len()` is not the product of `shape`.
    pub fn from_f32_as(dtype: DType, shape: &[usize], values: Vec<f32>) -> Tensor {
        let data = match dtype {
            DType::F32 => Data::F32(values),
            DType::F16 => Data::F16(values.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::BF16 => Data::BF16(values.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::I32 => Data::I32(values.iter().map(|&x| x as i32).collect()),
            DType::I64 => Data::I64(values.iter().map(|&x| x as i64).collect()),
            DType::Bool => Data::Bool(values.iter().map(|&x| x != 0.0).collect()),
        };
        Tensor::build(shape, data)
    }

    /// Values given as `i64`, converted to `dtype`: `i32` wraps (two's complement), floats
    /// round to nearest, bool is `!= 0`. Panics if `values.len()` is not the product of `shape`.
    pub fn from_i64_as(dtype: DType, shape: &[usize], values: Vec<i64>) -> Tensor {
        let data = match dtype {
            DType::F32 => Data::F32(values.iter().map(|&x| x as f32).collect()),
            DType::F16 => Data::F16(values.iter().map(|&x| f16::from_f64(x as f64)).collect()),
            DType::BF16 => Data::BF16(values.iter().map(|&x| bf16::from_f64(x as f64)).collect()),
            DType::I32 => Data::I32(values.iter().map(|&x| x as i32).collect()),
            DType::I64 => Data::I64(values),
            DType::Bool => Data::Bool(values.iter().map(|&x| x != 0).collect()),
        };
        Tensor::build(shape, data)
    }

    /// The tensor converted to another dtype.
    ///
    /// Float to float rounds to nearest even; float to integer truncates toward zero and
    /// saturates at the integer's range, NaN becoming 0; `i64` to `i32` wraps; integer to float
    /// rounds to nearest; anything to bool is `x != 0` (NaN is true); bool to numbers is 0 or 1.
    pub fn cast(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype {
            return self.clone();
        }
        match &self.data {
            Data::I32(_) | Data::I64(_) | Data::Bool(_) => Tensor::from_i64_as(dtype, &self.shape, self.to_i64_vec()),
            _ => Tensor::from_f32_as(dtype, &self.shape, self.to_f32_vec()),
        }
    }

    /// The same data with another shape; `None` if the element counts differ.
    pub fn reshaped(self, shape: Vec<usize>) -> Option<Tensor> {
        (shape_numel(&shape) == self.data.len()).then_some(Tensor { shape, ..self })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank (number of axes).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The elements, by value.
    pub fn into_data(self) -> Data {
        self.data
    }

    /// The elements of an `f32` tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an `i32` tensor.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            Data::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an `i64` tensor.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of a `bool` tensor.
    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as `f32` (integers rounded to nearest, bool as 0 or 1).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
        }
    }

    /// The elements as `f64` (exact for every dtype but `i64` beyond 2^53).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
        }
    }

    /// The elements as `i64` (floats truncated toward zero and saturated, NaN as 0; bool as
    /// 0 or 1).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        match &self.data {
            Data::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::I64(v) => v.clone(),
            Data::Bool(v) => v.iter().map(|&x| i64::from(x)).collect(),
            _ => self.to_f32_vec().iter().map(|&x| x as i64).collect(),
        }
    }

    /// The elements as `bool` (`x != 0`).
    pub fn to_bool_vec(&self) -> Vec<bool> {
        match &self.data {
            Data::Bool(v) => v.clone(),
            Data::I32(_) | Data::I64(_) => self.to_i64_vec().iter().map(|&x| x != 0).collect(),
            _ => self.to_f32_vec().iter().map(|&x| x != 0.0).collect(),
        }
    }

    /// The type as `mlc` prints it: `f32[2, 3]`.
    pub fn type_string(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        format!("{}[{}]", self.dtype, dims.join(", "))
    }

    /// A one-line human-readable description: the type, min/max/mean (numbers) or the count of
    /// true values (bool), and the first few elements.
    pub fn summary(&self) -> String {
        const SHOWN: usize = 8;
        let mut out = self.type_string();
        let n = self.numel();
        if self.dtype == DType::Bool {
            let t = self.to_bool_vec().iter().filter(|&&b| b).count();
            out += &format!(" true {t}/{n}");
        } else if n > 0 {
            let v = self.to_f64_vec();
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = v.iter().sum::<f64>() / n as f64;
            let nan = v.iter().filter(|x| x.is_nan()).count();
            out += &format!(" min {} max {} mean {}", fmt_num(min), fmt_num(max), fmt_num(mean));
            if nan > 0 {
                out += &format!(" nan {nan}");
            }
        }
        let head = self.take_head(SHOWN);
        out += &format!(" [{}{}]", head.join(", "), if n > SHOWN { ", ..." } else { "" });
        out
    }

    fn take_head(&self, k: usize) -> Vec<String> {
        let k = k.min(self.numel());
        match &self.data {
            Data::Bool(v) => v[..k].iter().map(|b| b.to_string()).collect(),
            Data::I32(_) | Data::I64(_) => self.to_i64_vec()[..k].iter().map(|x| x.to_string()).collect(),
            _ => self.to_f64_vec()[..k].iter().map(|&x| fmt_num(x)).collect(),
        }
    }
}

/// At most 6 significant digits, without trailing zeros; scientific notation when tiny or huge.
fn fmt_num(x: f64) -> String {
    if x.is_nan() || x.is_infinite() || x == x.trunc() && x.abs() < 1e15 {
        return format!("{x}");
    }
    let s = format!("{x:.5e}");
    let v: f64 = s.parse().unwrap_or(x);
    if v.abs() >= 1e-4 && v.abs() < 1e6 {
        format!("{v}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_accessors() {
        let t = Tensor::from_f32(&[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(t.numel(), 4);
        assert_eq!(t.as_f32(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
        assert_eq!(t.to_i64_vec(), vec![1, 2, 3, 4]);
        assert!(Tensor::new(vec![3], Data::I64(vec![1, 2])).is_err());
        assert!(Tensor::new(vec![1 << 40, 1 << 40, 0], Data::I64(vec![])).is_err());
        assert_eq!(Tensor::zeros(DType::Bool, &[2]).as_bool(), Some(&[false, false][..]));
        assert_eq!(Tensor::scalar_i64(5).shape(), &[] as &[usize]);
    }

    #[test]
    fn casts_round_and_saturate() {
        let t = Tensor::from_f32(&[4], vec![1.7, -1.7, f32::NAN, 1e20]);
        assert_eq!(t.cast(DType::I32).as_i32(), Some(&[1, -1, 0, i32::MAX][..]));
        let h = Tensor::from_f32(&[1], vec![1.0 + 1.0 / 4096.0]).cast(DType::F16);
        assert_eq!(h.to_f32_vec(), vec![1.0]); // rounds to nearest even in f16
        let w = Tensor::from_i64(&[1], vec![(1i64 << 32) + 5]).cast(DType::I32);
        assert_eq!(w.as_i32(), Some(&[5][..]));
    }

    #[test]
    fn summary_is_readable() {
        let t = Tensor::from_f32(&[2, 2], vec![1.0, -2.0, 3.5, 0.25]);
        assert_eq!(t.summary(), "f32[2, 2] min -2 max 3.5 mean 0.6875 [1, -2, 3.5, 0.25]");
        let b = Tensor::from_bool(&[3], vec![true, false, true]);
        assert_eq!(b.summary(), "bool[3] true 2/3 [true, false, true]");
    }
}
