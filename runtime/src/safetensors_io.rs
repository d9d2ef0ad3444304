//! Reading and writing `.safetensors` files.
//!
//! [`load`] memory-maps the file and parses only the header; a tensor's bytes are read (and
//! converted to an owned [`Tensor`]) when it is asked for by name.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use half::{bf16, f16};
use memmap2::Mmap;
use mlc_ir::DType;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::RuntimeError;
use crate::tensor::{Data, Tensor};

/// The header entry of one tensor.
#[derive(Clone, Debug)]
struct Entry {
    /// The mlc dtype, or the file's dtype name when mlc does not support it.
    dtype: Result<DType, String>,
    shape: Vec<usize>,
    /// Byte range within the whole file.
    start: usize,
    end: usize,
}

/// The bytes of a file: mapped, or owned (from [`TensorFile::from_bytes`]).
#[derive(Debug)]
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A memory-mapped safetensors file whose tensors are looked up by name.
#[derive(Debug)]
pub struct TensorFile {
    path: String,
    bytes: Bytes,
    entries: BTreeMap<String, Entry>,
}

fn to_mlc(d: Dtype) -> Result<DType, String> {
    match d {
        Dtype::F32 => Ok(DType::F32),
        Dtype::F16 => Ok(DType::F16),
        Dtype::BF16 => Ok(DType::BF16),
        Dtype::I32 => Ok(DType::I32),
        Dtype::I64 => Ok(DType::I64),
        Dtype::BOOL => Ok(DType::Bool),
        other => Err(format!("{other:?}")),
    }
}

fn to_safetensors(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I32 => Dtype::I32,
        DType::I64 => Dtype::I64,
        DType::Bool => Dtype::BOOL,
    }
}

/// Opens and memory-maps a safetensors file and parses its header.
///
/// A file that is truncated, has a malformed header or inconsistent offsets is an error
/// ([`RuntimeError::BadFile`]); tensors of unsupported dtypes are reported when accessed.
pub fn load(path: impl AsRef<Path>) -> Result<TensorFile, RuntimeError> {
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
    parse(path_str, Bytes::Mapped(mmap))
}

/// Parses a safetensors file held in memory; `name` stands for the path in error messages.
///
/// Errors as [`load`] (except that there is no file to open).
pub fn from_bytes(name: impl Into<String>, bytes: Vec<u8>) -> Result<TensorFile, RuntimeError> {
    parse(name.into(), Bytes::Owned(bytes))
}

fn parse(path_str: String, bytes: Bytes) -> Result<TensorFile, RuntimeError> {
    let bad = |message: String| RuntimeError::BadFile {
        path: path_str.clone(),
        message,
    };
    precheck(&bytes).map_err(bad)?;
    let (n, metadata) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    // `read_metadata` checked that the offsets tile the data section and that the file ends
    // exactly where the last tensor does, so every range below lies within the map.
    let base = 8 + n;
    let entries = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let entry = Entry {
                dtype: to_mlc(info.dtype),
                shape: info.shape.clone(),
                start: base + info.data_offsets.0,
                end: base + info.data_offsets.1,
            };
            (name, entry)
        })
        .collect();
    Ok(TensorFile {
        path: path_str,
        bytes,
        entries,
    })
}

/// Checks that every tensor's data offsets lie within the file before the `safetensors` crate
/// adds them up (its sum can overflow on a hostile header).
fn precheck(buf: &[u8]) -> Result<(), String> {
    let len_bytes: [u8; 8] = buf
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("the file is shorter than 8 bytes")?;
    let n = u64::from_le_bytes(len_bytes);
    let header_end = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&e| e <= buf.len());
    let header_end = header_end.ok_or_else(|| format!("the header length {n} exceeds the file"))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&buf[8..header_end]).map_err(|e| format!("bad header: {e}"))?;
    let data_len = (buf.len() - header_end) as u64;
    for (name, info) in header.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let offsets = info.get("data_offsets").and_then(|v| v.as_array());
        let end = offsets.and_then(|o| o.get(1)).and_then(|v| v.as_u64());
        match end {
            Some(e) if e <= data_len => {}
            Some(e) => {
                return Err(format!(
                    "tensor `{name}` ends at byte {e} of a data section of {data_len}"
                ));
            }
            None => return Err(format!("tensor `{name}` has no valid data_offsets")),
        }
    }
    Ok(())
}

impl TensorFile {
    /// The path the file was loaded from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.entries.keys().map(String::as_str).collect()
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the file holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True if the file has a tensor of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The shape of a tensor, without reading its data.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The dtype of a tensor: `Ok(None)` if absent, an error if mlc does not support it.
    pub fn dtype(&self, name: &str) -> Result<Option<DType>, RuntimeError> {
        match self.entries.get(name) {
            None => Ok(None),
            Some(e) => e.dtype.clone().map(Some).map_err(|dtype| self.unsupported(name, dtype)),
        }
    }

    /// The type of a tensor as printed in messages (`f32[2, 3]`, or `U8[4]` for a dtype mlc
    /// does not support), without reading its data.
    pub fn type_string(&self, name: &str) -> Option<String> {
        let e = self.entries.get(name)?;
        let dims: Vec<String> = e.shape.iter().map(|d| d.to_string()).collect();
        let dtype = match &e.dtype {
            Ok(d) => d.name().to_string(),
            Err(s) => s.clone(),
        };
        Some(format!("{dtype}[{}]", dims.join(", ")))
    }

    /// The raw little-endian bytes of a tensor, borrowed from the map.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        let e = self.entries.get(name)?;
        self.bytes.get(e.start..e.end)
    }

    fn unsupported(&self, name: &str, dtype: String) -> RuntimeError {
        RuntimeError::UnsupportedDtype {
            path: self.path.clone(),
            name: name.to_string(),
            dtype,
        }
    }

    /// Reads one tensor into an owned [`Tensor`].
    pub fn get(&self, name: &str) -> Result<Tensor, RuntimeError> {
        let missing = || RuntimeError::NoSuchTensor {
            path: self.path.clone(),
            name: name.to_string(),
        };
        let e = self.entries.get(name).ok_or_else(missing)?;
        let dtype = e.dtype.clone().map_err(|d| self.unsupported(name, d))?;
        let bytes = self.bytes(name).ok_or_else(|| RuntimeError::BadFile {
            path: self.path.clone(),
            message: format!("the data of `{name}` lies outside the file"),
        })?;
        let data = decode(dtype, bytes);
        Tensor::new(e.shape.clone(), data).map_err(|err| RuntimeError::BadFile {
            path: self.path.clone(),
            message: format!("tensor `{name}`: {err}"),
        })
    }

    /// Reads every tensor, sorted by name.
    pub fn tensors(&self) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        self.entries.keys().map(|n| Ok((n.clone(), self.get(n)?))).collect()
    }
}

fn decode(dtype: DType, b: &[u8]) -> Data {
    fn words<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| {
            let mut w = [0u8; N];
            w.copy_from_slice(c);
            w
        })
    }
    match dtype {
        DType::F32 => Data::F32(words::<4>(b).map(f32::from_le_bytes).collect()),
        DType::F16 => Data::F16(words::<2>(b).map(f16::from_le_bytes).collect()),
        DType::BF16 => Data::BF16(words::<2>(b).map(bf16::from_le_bytes).collect()),
        DType::I32 => Data::I32(words::<4>(b).map(i32::from_le_bytes).collect()),
        DType::I64 => Data::I64(words::<8>(b).map(i64::from_le_bytes).collect()),
        DType::Bool => Data::Bool(b.iter().map(|&x| x != 0).collect()),
    }
}

fn encode(data: &Data) -> Vec<u8> {
    match data {
        Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::BF16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::Bool(v) => v.iter().map(|&x| u8::from(x)).collect(),
    }
}

/// Writes tensors to a safetensors file (replacing it atomically if it exists).
pub fn save(path: impl AsRef<Path>, tensors: &[(String, Tensor)]) -> Result<(), RuntimeError> {
    let path = path.as_ref();
    let path_str = path.display().to_string();
    let bad = |message: String| RuntimeError::BadFile {
        path: path_str.clone(),
        message,
    };
    let mut seen = std::collections::HashSet::new();
    for (name, _) in tensors {
        if !seen.insert(name.as_str()) {
            return Err(RuntimeError::DuplicateTensor {
                path: path_str.clone(),
                name: name.clone(),
            });
        }
    }
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, t)| encode(t.data())).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| {
            let view = TensorView::new(to_safetensors(t.dtype()), t.shape().to_vec(), b)
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            Ok((name.as_str(), view))
        })
        .collect::<Result<Vec<_>, RuntimeError>>()?;
    safetensors::serialize_to_file(views, None, path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(source) => RuntimeError::Io {
            path: path_str.clone(),
            source,
        },
        other => bad(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mlc-runtime-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn round_trip_every_dtype() {
        let tensors = vec![
            (
                "a".to_string(),
                Tensor::from_f32(&[2, 3], vec![1.0, -2.5, 3.0, 0.0, 1e-3, 7.0]),
            ),
            (
                "b".to_string(),
                Tensor::from_f16(&[2], vec![f16::from_f32(0.5), f16::from_f32(-1.0)]),
            ),
            ("c".to_string(), Tensor::from_bf16(&[1], vec![bf16::from_f32(3.0)])),
            ("d".to_string(), Tensor::from_i32(&[3], vec![1, -2, i32::MAX])),
            ("e".to_string(), Tensor::from_i64(&[], vec![i64::MIN])),
            ("f".to_string(), Tensor::from_bool(&[2, 1], vec![true, false])),
            ("g".to_string(), Tensor::from_f32(&[0, 4], vec![])),
        ];
        let p = tmp("round_trip.safetensors");
        save(&p, &tensors).unwrap();
        let f = load(&p).unwrap();
        assert_eq!(f.names(), vec!["a", "b", "c", "d", "e", "f", "g"]);
        assert_eq!(f.shape("a"), Some(&[2, 3][..]));
        assert_eq!(f.dtype("c").unwrap(), Some(DType::BF16));
        assert_eq!(f.tensors().unwrap(), tensors);
        assert!(matches!(f.get("zz"), Err(RuntimeError::NoSuchTensor { .. })));
    }

    #[test]
    fn damaged_files_are_errors() {
        let p = tmp("damaged.safetensors");
        save(&p, &[("w".to_string(), Tensor::from_f32(&[4], vec![1.0; 4]))]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        for cut in [0, 3, 8, 20, bytes.len() - 1] {
            let q = tmp(&format!("cut{cut}.safetensors"));
            std::fs::write(&q, &bytes[..cut]).unwrap();
            let err = load(&q).unwrap_err();
            assert!(matches!(err, RuntimeError::BadFile { .. }), "{err}");
        }
        let q = tmp("garbage.safetensors");
        std::fs::write(&q, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot a header").unwrap();
        assert!(load(&q).is_err());
        assert!(matches!(load(tmp("absent.safetensors")), Err(RuntimeError::Io { .. })));
        // Offsets whose sum overflows `usize`: eight tensors of 2^61 - 1 bytes each.
        let size = (1u64 << 61) - 1;
        let entries: Vec<String> = (0..8)
            .map(|k| {
                let (s, e) = (k * size, (k + 1) * size);
                format!(r#""t{k}":{{"dtype":"U8","shape":[{size}],"data_offsets":[{s},{e}]}}"#)
            })
            .collect();
        let header = format!("{{{}}}", entries.join(","));
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        let q = tmp("overflow.safetensors");
        std::fs::write(&q, &bytes).unwrap();
        assert!(matches!(load(&q), Err(RuntimeError::BadFile { .. })));
    }

    #[test]
    fn unsupported_dtype_names_the_tensor() {
        let p = tmp("u8.safetensors");
        let view = TensorView::new(Dtype::U8, vec![2], &[1, 2]).unwrap();
        safetensors::serialize_to_file(vec![("bytes", view)], None, &p).unwrap();
        let f = load(&p).unwrap();
        assert_eq!(f.type_string("bytes").as_deref(), Some("U8[2]"));
        let msg = f.get("bytes").unwrap_err().to_string();
        assert!(msg.contains("`bytes`") && msg.contains("U8"), "{msg}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let t = Tensor::scalar_f32(1.0);
        let err = save(tmp("dup.safetensors"), &[("x".into(), t.clone()), ("x".into(), t)]).unwrap_err();
        assert!(matches!(err, RuntimeError::DuplicateTensor { .. }));
    }
}
