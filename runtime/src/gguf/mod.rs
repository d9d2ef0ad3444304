//! Reading GGUF files (the llama.cpp / ggml model format), versions 2 and 3, little-endian.
//!
//! A GGUF file is, in order:
//!
//! 1. a header: the magic `GGUF`, a `u32` version, a `u64` tensor count and a `u64`
//!    metadata count;
//! 2. the metadata: each entry a string key (`u64` length + UTF-8 bytes), a `u32` value type
//!    and the value (scalars, strings, arrays of any type including arrays);
//! 3. the tensor infos: each a name (string), a `u32` dimension count (at most 4), that many
//!    `u64` dimensions (`ne[0]` first, the fastest-varying one), a `u32` ggml type and a `u64`
//!    offset into the data section;
//! 4. padding to `general.alignment` (default 32), then the data section: each tensor's bytes
//!    at its offset (itself a multiple of the alignment), in blocks of its ggml type.
//!
//! [`GgufFile::open`] memory-maps the file and validates all of this up front (every count,
//! length and range is checked against the file before anything is allocated), so a damaged
//! file is a [`RuntimeError`], never a panic. Tensors are dequantised to `f32` on request by
//! [`GgufFile::tensor`]; their shapes are given row-major, i.e. the reverse of the `ne` order
//! in the file (`ne = [576, 49152]` is a `[49152, 576]` matrix).
//!
//! ```no_run
//! # fn main() -> Result<(), mlc_runtime::RuntimeError> {
//! use mlc_runtime::gguf::GgufFile;
//! let file = GgufFile::open("model.gguf")?;
//! let layers = file.get_usize("llama.block_count")?;
//! let tokens = file.get_str_array("tokenizer.ggml.tokens")?;
//! let embed = file.tensor("token_embd.weight")?;
//! println!("{layers} layers, {} tokens, {}", tokens.len(), embed.summary());
//! # Ok(())
//! # }
//! ```

mod ggml;
mod meta;

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;
use mlc_kernels::QuantMatrix;

pub use ggml::{GgmlType, dequantize};
pub use meta::{MetaArray, MetaType, MetaValue};

use crate::error::RuntimeError;
use crate::tensor::{Data, Tensor};

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// The most dimensions a tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// How deeply arrays of arrays may nest before the file is refused.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Where and what one tensor is, from its tensor info.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    name: String,
    ne: Vec<u64>,
    shape: Vec<usize>,
    numel: usize,
    ggml_type: GgmlType,
    offset: u64,
    /// Absolute byte range in the file; `None` for an unknown type (whose size is unknown).
    range: Option<(usize, usize)>,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shape, row-major (slowest-varying axis first): the file's `ne` reversed.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The dimensions in the file's order (`ne[0]`, the fastest-varying, first).
    pub fn ne(&self) -> &[u64] {
        &self.ne
    }

    /// The number of elements (1 for a tensor with no dimensions).
    pub fn numel(&self) -> usize {
        self.numel
    }

    /// The ggml element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// The offset of the tensor's bytes relative to the start of the data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The absolute offset of the tensor's bytes in the file; `None` for an unknown type.
    pub fn file_offset(&self) -> Option<usize> {
        self.range.map(|(start, _)| start)
    }

    /// The size of the tensor's bytes; `None` for an unknown type.
    pub fn byte_size(&self) -> Option<usize> {
        self.range.map(|(start, end)| end - start)
    }
}

/// The bytes of a file: mapped, or owned (from [`GgufFile::from_bytes`]).
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// An open GGUF file: its metadata and tensor infos, parsed and validated, and its bytes.
pub struct GgufFile {
    path: String,
    bytes: Bytes,
    version: u32,
    alignment: usize,
    data_offset: usize,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("len", &self.bytes.len())
            .field("alignment", &self.alignment)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and memory-maps a GGUF file and parses and validates its header, metadata and
    /// tensor infos (tensor bytes are read only when asked for).
    ///
    /// Errors: [`RuntimeError::Io`] when the file cannot be opened or mapped, and
    /// [`RuntimeError::Gguf`] for anything malformed (a bad magic, an unsupported version,
    /// truncation, a count or length larger than the file, invalid UTF-8, a bad dimension
    /// count, a duplicate name, a tensor misaligned or outside the file, ...).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, RuntimeError> {
        let path_str = path.as_ref().display().to_string();
        let io = |source| RuntimeError::Io {
            path: path_str.clone(),
            source,
        };
        let file = File::open(path.as_ref()).map_err(io)?;
        // SAFETY: the map is read-only and private to this value. As with every memory-mapped
        // file, another process truncating or rewriting the file while it is mapped is outside
        // what this API can guard against.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        GgufFile::parse(path_str, Bytes::Mapped(mmap))
    }

    /// Parses a GGUF file held in memory; `name` stands for the path in error messages.
    ///
    /// Errors as [`GgufFile::open`].
    pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<GgufFile, RuntimeError> {
        GgufFile::parse(name.into(), Bytes::Owned(bytes))
    }

    fn parse(path: String, bytes: Bytes) -> Result<GgufFile, RuntimeError> {
        let parsed = match parse(&bytes) {
            Ok(p) => p,
            Err(message) => return Err(RuntimeError::Gguf { path, message }),
        };
        let meta_index = index_of(parsed.metadata.iter().map(|(k, _)| k.as_str()));
        let tensor_index = index_of(parsed.tensors.iter().map(|t| t.name.as_str()));
        Ok(GgufFile {
            path,
            bytes,
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            metadata: parsed.metadata,
            meta_index,
            tensors: parsed.tensors,
            tensor_index,
        })
    }

    /// The path the file was opened from (or the name given to [`GgufFile::from_bytes`]).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The alignment of the data section and of every tensor's offset.
    pub fn alignment(&self) -> usize {
        self.alignment
    }

    /// The absolute offset of the data section in the file.
    pub fn data_offset(&self) -> usize {
        self.data_offset
    }

    /// The size of the file in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty file (never the case for a successfully parsed one).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Every metadata entry, in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// The value of a metadata key, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// True when the metadata has the key.
    pub fn contains_key(&self, key: &str) -> bool {
        self.meta_index.contains_key(key)
    }

    fn error(&self, message: String) -> RuntimeError {
        RuntimeError::Gguf {
            path: self.path.clone(),
            message,
        }
    }

    /// The value of a key, or an error naming the missing key.
    fn require(&self, key: &str) -> Result<&MetaValue, RuntimeError> {
        self.get(key)
            .ok_or_else(|| self.error(format!("no metadata key `{key}`")))
    }

    fn wrong_type(&self, key: &str, value: &MetaValue, expected: &str) -> RuntimeError {
        self.error(format!(
            "metadata key `{key}` is {} ({value}), expected {expected}",
            value.type_description()
        ))
    }

    /// A string value. Errors name the key when it is missing or not a string.
    pub fn get_str(&self, key: &str) -> Result<&str, RuntimeError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| self.wrong_type(key, v, "a string"))
    }

    /// A value of any integer type, as `u64`; an error if missing, not an integer, or negative.
    pub fn get_u64(&self, key: &str) -> Result<u64, RuntimeError> {
        self.get_int(key, "a non-negative integer")
    }

    /// A value of any integer type, as `u32`; an error if missing, not an integer, or out of range.
    pub fn get_u32(&self, key: &str) -> Result<u32, RuntimeError> {
        self.get_int(key, "an integer in the range of u32")
    }

    /// A value of any integer type, as `usize`; an error if missing, not an integer, or out of range.
    pub fn get_usize(&self, key: &str) -> Result<usize, RuntimeError> {
        self.get_int(key, "a non-negative integer")
    }

    /// A value of any integer type, as `i64`; an error if missing, not an integer, or out of range.
    pub fn get_i64(&self, key: &str) -> Result<i64, RuntimeError> {
        self.get_int(key, "an integer in the range of i64")
    }

    fn get_int<T: TryFrom<i128>>(&self, key: &str, expected: &str) -> Result<T, RuntimeError> {
        let v = self.require(key)?;
        v.as_integer()
            .and_then(|x| T::try_from(x).ok())
            .ok_or_else(|| self.wrong_type(key, v, expected))
    }

    /// A value of any numeric type, as `f32` (an `f32` exactly; others rounded to nearest).
    pub fn get_f32(&self, key: &str) -> Result<f32, RuntimeError> {
        let v = self.require(key)?;
        v.as_f32().ok_or_else(|| self.wrong_type(key, v, "a number"))
    }

    /// A boolean value.
    pub fn get_bool(&self, key: &str) -> Result<bool, RuntimeError> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| self.wrong_type(key, v, "a bool"))
    }

    /// An array value of any element type.
    pub fn get_array(&self, key: &str) -> Result<&MetaArray, RuntimeError> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| self.wrong_type(key, v, "an array"))
    }

    /// An array of strings.
    pub fn get_str_array(&self, key: &str) -> Result<&[String], RuntimeError> {
        let v = self.require(key)?;
        v.as_array()
            .and_then(MetaArray::as_strs)
            .ok_or_else(|| self.wrong_type(key, v, "an array of strings"))
    }

    /// An array of any integer type whose elements all fit in `i32`.
    pub fn get_i32_array(&self, key: &str) -> Result<Vec<i32>, RuntimeError> {
        let v = self.require(key)?;
        v.as_array()
            .and_then(MetaArray::to_integers)
            .and_then(|xs| xs.into_iter().map(|x| i32::try_from(x).ok()).collect())
            .ok_or_else(|| self.wrong_type(key, v, "an array of integers in the range of i32"))
    }

    /// An array of any numeric type, as `f32` (`f32` elements exactly; others rounded).
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, RuntimeError> {
        let v = self.require(key)?;
        v.as_array()
            .and_then(MetaArray::to_f32_vec)
            .ok_or_else(|| self.wrong_type(key, v, "an array of numbers"))
    }

    /// Every tensor info, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The info of the tensor with the given name, if there is one.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    fn lookup(&self, name: &str) -> Result<&TensorInfo, RuntimeError> {
        self.tensor_info(name).ok_or_else(|| RuntimeError::NoSuchTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })
    }

    /// The raw bytes of a tensor, in its ggml type's block layout.
    ///
    /// Errors: [`RuntimeError::NoSuchTensor`], or [`RuntimeError::GgufUnsupportedType`] for
    /// an unknown type id (whose size is unknown).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], RuntimeError> {
        let info = self.lookup(name)?;
        self.bytes_of(info)
    }

    fn bytes_of(&self, info: &TensorInfo) -> Result<&[u8], RuntimeError> {
        match info.range {
            Some((start, end)) => Ok(&self.bytes[start..end]),
            None => Err(self.unsupported(info)),
        }
    }

    fn unsupported(&self, info: &TensorInfo) -> RuntimeError {
        RuntimeError::GgufUnsupportedType {
            path: self.path.clone(),
            name: info.name.clone(),
            ggml_type: info.ggml_type.to_string(),
        }
    }

    /// A tensor dequantised to a row-major `f32` [`Tensor`] of shape [`TensorInfo::shape`].
    ///
    /// Errors: [`RuntimeError::NoSuchTensor`], or [`RuntimeError::GgufUnsupportedType`] when
    /// the tensor's type is not one of [`GgmlType::SUPPORTED`].
    pub fn tensor(&self, name: &str) -> Result<Tensor, RuntimeError> {
        let info = self.lookup(name)?;
        self.dequantize_info(info)
    }

    fn dequantize_info(&self, info: &TensorInfo) -> Result<Tensor, RuntimeError> {
        if !info.ggml_type.is_supported() {
            return Err(self.unsupported(info));
        }
        let bytes = self.bytes_of(info)?;
        let values = dequantize(info.ggml_type, bytes).ok_or_else(|| self.unsupported(info))?;
        Tensor::new(info.shape.clone(), Data::F32(values))
    }

    /// A rank-2 tensor stored in `Q8_0` or `Q4_1` blocks, kept in blocks (see
    /// [`QuantMatrix`]): what [`Weights::attach_quantized`](crate::Weights::attach_quantized)
    /// takes, so that products with few rows read the blocks instead of `f32` values. `None`
    /// for a tensor of another type or rank.
    ///
    /// Errors: [`RuntimeError::NoSuchTensor`].
    pub fn quantized(&self, name: &str) -> Result<Option<QuantMatrix>, RuntimeError> {
        let info = self.lookup(name)?;
        let &[rows, cols] = info.shape.as_slice() else {
            return Ok(None);
        };
        let bytes = self.bytes_of(info)?;
        let q = ggml::blocks(info.ggml_type, rows, cols, bytes).map_err(|e| RuntimeError::Gguf {
            path: self.path.clone(),
            message: format!("tensor `{name}`: {e}"),
        })?;
        Ok(q)
    }

    /// Every tensor, dequantised to `f32` one at a time, in file order, with its name.
    pub fn tensors_f32(&self) -> impl Iterator<Item = Result<(&str, Tensor), RuntimeError>> + '_ {
        self.tensors
            .iter()
            .map(|info| self.dequantize_info(info).map(|t| (info.name.as_str(), t)))
    }
}

fn index_of<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<String, usize> {
    names.enumerate().map(|(i, n)| (n.to_string(), i)).collect()
}

/// The result of parsing, before it is joined with the bytes.
struct Parsed {
    version: u32,
    alignment: usize,
    data_offset: usize,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorInfo>,
}

/// A little-endian reader over the file's bytes whose every read is bounds-checked.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next `n` bytes; `what` names the item for the truncation message.
    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {} needs {n} bytes at offset {}, but the file has {} bytes",
                what(),
                self.pos,
                self.buf.len()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], String> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A count or length that must fit, at `unit` bytes per item, in the rest of the file.
    fn count(&mut self, unit: usize, what: &dyn Fn() -> String) -> Result<usize, String> {
        let n = self.u64(what)?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            return Err(format!(
                "{} is {n}, more than the {} bytes left in the file can hold (at offset {})",
                what(),
                self.remaining(),
                self.pos - 8
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, String> {
        let len = self.count(1, &|| format!("the length of {}", what()))?;
        let start = self.pos;
        let bytes = self.take(len, what)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(format!("{} is not valid UTF-8 (at offset {start}): {e}", what())),
        }
    }

    fn meta_type(&mut self, what: &dyn Fn() -> String) -> Result<MetaType, String> {
        let start = self.pos;
        let id = self.u32(&|| format!("the type of {}", what()))?;
        MetaType::from_id(id).ok_or_else(|| format!("{} has an invalid value type {id} (at offset {start})", what()))
    }

    fn value(&mut self, ty: MetaType, depth: usize, what: &dyn Fn() -> String) -> Result<MetaValue, String> {
        Ok(match ty {
            MetaType::U8 => MetaValue::U8(u8::from_le_bytes(self.array(what)?)),
            MetaType::I8 => MetaValue::I8(i8::from_le_bytes(self.array(what)?)),
            MetaType::U16 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            MetaType::I16 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            MetaType::U32 => MetaValue::U32(u32::from_le_bytes(self.array(what)?)),
            MetaType::I32 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            MetaType::F32 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            MetaType::U64 => MetaValue::U64(u64::from_le_bytes(self.array(what)?)),
            MetaType::I64 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            MetaType::F64 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            MetaType::Bool => MetaValue::Bool(self.bool(what)?),
            MetaType::String => MetaValue::String(self.string(what)?),
            MetaType::Array => MetaValue::Array(self.meta_array(depth, what)?),
        })
    }

    fn bool(&mut self, what: &dyn Fn() -> String) -> Result<bool, String> {
        let start = self.pos;
        match self.array::<1>(what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!(
                "{} is a bool with byte {b}, not 0 or 1 (at offset {start})",
                what()
            )),
        }
    }

    /// An array (element type, count, elements); `depth` counts the arrays around it.
    fn meta_array(&mut self, depth: usize, what: &dyn Fn() -> String) -> Result<MetaArray, String> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(format!(
                "{} nests arrays more than {MAX_ARRAY_DEPTH} deep (at offset {})",
                what(),
                self.pos
            ));
        }
        let ty = self.meta_type(&|| format!("the elements of {}", what()))?;
        let n = self.count(ty.min_encoded_size(), &|| format!("the length of {}", what()))?;
        let elem = |i: usize| move || format!("element {i} of {}", what());
        fn fixed<T, const N: usize>(
            c: &mut Cursor<'_>,
            n: usize,
            what: &dyn Fn() -> String,
            conv: fn([u8; N]) -> T,
        ) -> Result<Vec<T>, String> {
            // `count` checked that `n * N` bytes remain.
            let bytes = c.take(n * N, what)?;
            Ok(bytes
                .chunks_exact(N)
                .map(|b| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(b);
                    conv(a)
                })
                .collect())
        }
        Ok(match ty {
            MetaType::U8 => MetaArray::U8(fixed(self, n, what, u8::from_le_bytes)?),
            MetaType::I8 => MetaArray::I8(fixed(self, n, what, i8::from_le_bytes)?),
            MetaType::U16 => MetaArray::U16(fixed(self, n, what, u16::from_le_bytes)?),
            MetaType::I16 => MetaArray::I16(fixed(self, n, what, i16::from_le_bytes)?),
            MetaType::U32 => MetaArray::U32(fixed(self, n, what, u32::from_le_bytes)?),
            MetaType::I32 => MetaArray::I32(fixed(self, n, what, i32::from_le_bytes)?),
            MetaType::F32 => MetaArray::F32(fixed(self, n, what, f32::from_le_bytes)?),
            MetaType::U64 => MetaArray::U64(fixed(self, n, what, u64::from_le_bytes)?),
            MetaType::I64 => MetaArray::I64(fixed(self, n, what, i64::from_le_bytes)?),
            MetaType::F64 => MetaArray::F64(fixed(self, n, what, f64::from_le_bytes)?),
            MetaType::Bool => MetaArray::Bool((0..n).map(|i| self.bool(&elem(i))).collect::<Result<_, _>>()?),
            MetaType::String => MetaArray::String((0..n).map(|i| self.string(&elem(i))).collect::<Result<_, _>>()?),
            MetaType::Array => MetaArray::Array(
                (0..n)
                    .map(|i| self.meta_array(depth + 1, &elem(i)))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// The fewest bytes a metadata entry takes: key length, type, a one-byte value.
const MIN_KV_SIZE: usize = 8 + 4 + 1;
/// The fewest bytes a tensor info takes: name length, dimension count, type, offset.
const MIN_TENSOR_INFO_SIZE: usize = 8 + 4 + 4 + 8;

fn parse(buf: &[u8]) -> Result<Parsed, String> {
    let mut c = Cursor { buf, pos: 0 };
    if buf.len() < 4 {
        return Err(format!("not a GGUF file: it has only {} bytes", buf.len()));
    }
    let magic = c.array::<4>(&|| "the magic".to_string())?;
    if magic != MAGIC {
        return Err(format!(
            "not a GGUF file: it starts with {:?} ({}), not `GGUF`",
            String::from_utf8_lossy(&magic),
            magic.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        ));
    }
    let version = c.u32(&|| "the version".to_string())?;
    match version {
        2 | 3 => {}
        1 => return Err("unsupported GGUF version 1 (32-bit counts); mlc reads versions 2 and 3".to_string()),
        v if matches!(v.swap_bytes(), 2 | 3) => {
            return Err(format!(
                "unsupported GGUF file: big-endian (version {} byte-swapped); mlc reads little-endian files only",
                v.swap_bytes()
            ));
        }
        v => return Err(format!("unsupported GGUF version {v}; mlc reads versions 2 and 3")),
    }
    let tensor_count = c.u64(&|| "the tensor count".to_string())?;
    let kv_count = c.u64(&|| "the metadata count".to_string())?;
    let needed = u128::from(tensor_count) * MIN_TENSOR_INFO_SIZE as u128 + u128::from(kv_count) * MIN_KV_SIZE as u128;
    if needed > c.remaining() as u128 {
        return Err(format!(
            "the header claims {tensor_count} tensors and {kv_count} metadata entries, more than the \
             {} bytes left in the file can hold",
            c.remaining()
        ));
    }
    // The check above bounds both counts by the file size, so they fit in usize.
    let (tensor_count, kv_count) = (tensor_count as usize, kv_count as usize);

    let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(kv_count);
    let mut keys: HashMap<String, usize> = HashMap::with_capacity(kv_count);
    for i in 0..kv_count {
        let key = c.string(&|| format!("the key of metadata entry {i}"))?;
        let what = || format!("metadata `{key}`");
        let ty = c.meta_type(&what)?;
        let value = c.value(ty, 0, &what)?;
        if let Some(first) = keys.insert(key.clone(), i) {
            return Err(format!("metadata key `{key}` appears twice (entries {first} and {i})"));
        }
        metadata.push((key, value));
    }

    let alignment = match keys.get("general.alignment").map(|&i| &metadata[i].1) {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64().and_then(|a| usize::try_from(a).ok()) {
            Some(a) if a.is_power_of_two() => a,
            _ => {
                return Err(format!(
                    "`general.alignment` is {v} ({}), not a power of two",
                    v.type_description()
                ));
            }
        },
    };

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(tensor_count);
    let mut names: HashMap<String, usize> = HashMap::with_capacity(tensor_count);
    for i in 0..tensor_count {
        let name = c.string(&|| format!("the name of tensor info {i}"))?;
        let what = || format!("tensor `{name}`");
        let n_dims = c.u32(&|| format!("the dimension count of {}", what()))? as usize;
        if n_dims > MAX_DIMS {
            return Err(format!(
                "{} has {n_dims} dimensions; GGUF allows at most {MAX_DIMS}",
                what()
            ));
        }
        let mut ne = Vec::with_capacity(n_dims);
        for d in 0..n_dims {
            ne.push(c.u64(&|| format!("dimension {d} of {}", what()))?);
        }
        let type_id = c.u32(&|| format!("the type of {}", what()))?;
        let offset = c.u64(&|| format!("the data offset of {}", what()))?;
        let ggml_type = GgmlType::from_id(type_id);
        if let Some(first) = names.insert(name.clone(), i) {
            return Err(format!("two tensors are named `{name}` (tensor infos {first} and {i})"));
        }
        let numel = ne
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("{} has dimensions {ne:?}, whose element count overflows", what()))?;
        let shape = ne
            .iter()
            .rev()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| format!("{} has dimensions {ne:?} too large for this machine", what()))?;
        tensors.push(TensorInfo {
            name,
            ne,
            shape,
            numel,
            ggml_type,
            offset,
            range: None,
        });
    }

    let data_offset = c
        .pos
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| format!("the data section offset overflows with alignment {alignment}"))?;

    for t in &mut tensors {
        if !t.offset.is_multiple_of(alignment as u64) {
            return Err(format!(
                "tensor `{}` has data offset {}, not a multiple of the alignment {alignment}",
                t.name, t.offset
            ));
        }
        let Some((block, block_bytes)) = t.ggml_type.block_layout() else {
            continue;
        };
        let row = t.ne.first().copied().unwrap_or(1);
        if !row.is_multiple_of(block as u64) {
            return Err(format!(
                "tensor `{}` has type {} (blocks of {block}), but its rows have {row} elements, not a \
                 multiple of {block}",
                t.name, t.ggml_type
            ));
        }
        let size = (t.numel / block).checked_mul(block_bytes);
        let start = usize::try_from(t.offset).ok().and_then(|o| o.checked_add(data_offset));
        let range = start.zip(size).and_then(|(s, n)| Some((s, s.checked_add(n)?)));
        match range {
            Some((s, e)) if e <= buf.len() => t.range = Some((s, e)),
            _ => {
                return Err(format!(
                    "tensor `{}` ({} of {:?}: {} bytes at data offset {}) lies outside the file ({} bytes, data \
                     section at {data_offset})",
                    t.name,
                    t.ggml_type,
                    t.shape,
                    size.map_or("too many".to_string(), |s| s.to_string()),
                    t.offset,
                    buf.len()
                ));
            }
        }
    }

    Ok(Parsed {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
    })
}
