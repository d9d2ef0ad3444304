//! Damaged files: a real package (`examples/tiny`, compiled here), a safetensors file and a GGUF
//! file (`runtime/tests/data/gguf/fixture.gguf`) with one byte flipped at every offset (several
//! bit patterns) and truncated at every length.
//!
//! What each case must give:
//!
//! - a package: always an error (the header is read strictly, the body is under a checksum);
//! - safetensors and GGUF: an error, never a panic; the data section has no checksum, so a flip
//!   there reads back with exactly the tensors holding that byte changed and everything else
//!   identical; a flip in the header either is an error, or reads back something visibly
//!   different (a name, dtype, shape or metadata value), or is inert (identical result): never
//!   an identical-looking header with different data.
//!
//! The number of cases tried is printed (`cargo test --test damaged_files -- --nocapture`).

mod common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::DType;
use mlc_runtime::gguf::GgufFile;
use mlc_runtime::tensor::Data;
use mlc_runtime::{Model, RuntimeError, Tensor, package, safetensors_io};

use common::{crate_dir, tiny_path};

/// XOR masks applied to a byte: one low bit, one high bit, ASCII case, all bits.
const PATTERNS: [u8; 4] = [0x01, 0x80, 0x20, 0xff];

/// The package text of `examples/tiny`, optimised as `mlc build` writes it.
fn tiny_package() -> Vec<u8> {
    let path = tiny_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let module = compile_source_optimized("model.dsl", &text, &LowerOptions::default()).unwrap();
    package::to_text(&module).into_bytes()
}

fn flipped(bytes: &[u8], offset: usize, mask: u8) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[offset] ^= mask;
    b
}

/// A tensor's dtype, shape and the bit patterns of its elements (NaN-safe equality).
fn bits(t: &Tensor) -> (String, Vec<usize>, Vec<u64>) {
    let v: Vec<u64> = match t.data() {
        Data::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::F16(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::BF16(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        Data::I32(v) => v.iter().map(|&x| x as u32 as u64).collect(),
        Data::I64(v) => v.iter().map(|&x| x as u64).collect(),
        Data::Bool(v) => v.iter().map(|&x| u64::from(x)).collect(),
    };
    (t.dtype().to_string(), t.shape().to_vec(), v)
}

type TensorBits = (String, Vec<usize>, Vec<u64>);

// ---------------------------------------------------------------- packages

#[test]
fn every_damaged_package_is_an_error() {
    let good = tiny_package();
    assert!(package::from_bytes(&good).is_ok());
    let mut cases = 0usize;
    let mut accepted = Vec::new();
    for offset in 0..good.len() {
        for mask in PATTERNS {
            cases += 1;
            if package::from_bytes(&flipped(&good, offset, mask)).is_ok() {
                accepted.push(format!("flip {mask:#04x} at {offset}"));
            }
        }
    }
    for len in 0..good.len() {
        cases += 1;
        if package::from_bytes(&good[..len]).is_ok() {
            accepted.push(format!("truncated to {len}"));
        }
    }
    eprintln!("damaged packages: {cases} cases ({} bytes), all errors", good.len());
    assert!(accepted.is_empty(), "damaged packages accepted: {accepted:?}");

    // And through the file API: a damaged file names itself and says why.
    let dir = std::env::temp_dir().join(format!("mlc-damaged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("tiny.mlcpkg");
    let last = good.len() - 2;
    std::fs::write(&p, flipped(&good, last, 1)).unwrap();
    let err = Model::load(&p).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::Package { message, .. } if message.contains("checksum")),
        "{err}"
    );
    assert!(err.to_string().contains("tiny.mlcpkg"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_package_from_a_newer_mlc_is_a_version_error() {
    let good = String::from_utf8(tiny_package()).unwrap();
    let newer_version = package::FORMAT_VERSION + 1;
    let newer = good.replacen(
        &format!("mlcpkg {}\n", package::FORMAT_VERSION),
        &format!("mlcpkg {newer_version}\n"),
        1,
    );
    assert_ne!(newer, good);
    let err = package::from_bytes(newer.as_bytes()).unwrap_err();
    assert!(
        err.contains(&format!("format version {newer_version}")) && err.contains("newer"),
        "{err}"
    );
}

/// Damage a checksum cannot see: the body changed and the checksum recomputed (a hand-edited
/// or maliciously built package). The IR parser, the verifier and the planner must answer with
/// a model or an error, never a panic.
#[test]
fn re_checksummed_damaged_bodies_never_panic() {
    let good = String::from_utf8(tiny_package()).unwrap();
    let (_, body) = good.split_once("\n\n").unwrap();
    let body = body.as_bytes();
    let mut cases = 0usize;
    let (mut loaded, mut planned) = (0usize, 0usize);
    let mut panics = Vec::new();
    // Every offset with one pattern, every 7th with the others.
    for offset in 0..body.len() {
        for (k, mask) in PATTERNS.into_iter().enumerate() {
            if k > 0 && offset % 7 != 0 {
                continue;
            }
            let damaged = flipped(body, offset, mask);
            let mut text = format!(
                "mlcpkg {}\nchecksum fnv1a64 {:016x}\n\n",
                package::FORMAT_VERSION,
                package::fnv1a64(&damaged)
            )
            .into_bytes();
            text.extend_from_slice(&damaged);
            cases += 1;
            let outcome = catch_unwind(AssertUnwindSafe(|| match package::from_bytes(&text) {
                Ok(module) => (1, usize::from(Model::from_module(module).is_ok())),
                Err(_) => (0, 0),
            }));
            match outcome {
                Ok((l, p)) => {
                    loaded += l;
                    planned += p;
                }
                Err(_) => panics.push(format!("flip {mask:#04x} at body offset {offset}")),
            }
        }
    }
    eprintln!("re-checksummed package bodies: {cases} cases, {loaded} parsed and verified, {planned} planned");
    assert!(panics.is_empty(), "panics: {panics:?}");
    // The sweep reaches the parser: some flips (in names, say) still give a valid module.
    assert!(loaded > 0);
}

// ---------------------------------------------------------------- safetensors

fn safetensors_fixture() -> Vec<u8> {
    let tensors = vec![
        (
            "a".to_string(),
            Tensor::from_f32(&[2, 3], vec![1.0, -2.5, 3.0, 0.0, 1e-3, 7.0]),
        ),
        (
            "b".to_string(),
            Tensor::from_f32_as(DType::F16, &[3], vec![0.5, -1.0, 2.0]),
        ),
        (
            "c".to_string(),
            Tensor::from_f32_as(DType::BF16, &[2], vec![3.0, -0.25]),
        ),
        ("d".to_string(), Tensor::from_i32(&[3], vec![1, -2, i32::MAX])),
        ("e".to_string(), Tensor::from_i64(&[2], vec![i64::MIN, 5])),
        (
            "f".to_string(),
            Tensor::from_bool(&[2, 2], vec![true, false, false, true]),
        ),
    ];
    let dir = std::env::temp_dir().join(format!("mlc-damaged-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("fixture.safetensors");
    safetensors_io::save(&p, &tensors).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    bytes
}

/// What a reader sees: every tensor's name and type as printed, and its contents.
#[derive(Debug, PartialEq)]
struct StView {
    header: Vec<(String, String)>,
    data: Vec<TensorBits>,
}

fn read_safetensors(bytes: &[u8]) -> Result<StView, RuntimeError> {
    let f = safetensors_io::from_bytes("damaged.safetensors", bytes.to_vec())?;
    let names: Vec<String> = f.names().into_iter().map(String::from).collect();
    let header = names.iter().map(|n| (n.clone(), f.type_string(n).unwrap())).collect();
    let data = names
        .iter()
        .map(|n| f.get(n).map(|t| bits(&t)))
        .collect::<Result<_, _>>()?;
    Ok(StView { header, data })
}

/// Each tensor's absolute byte range, from the header.
fn safetensors_ranges(bytes: &[u8]) -> (usize, BTreeMap<String, (usize, usize)>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let base = 8 + n;
    let ranges = header
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .map(|(k, v)| {
            let o = v["data_offsets"].as_array().unwrap();
            let (s, e) = (o[0].as_u64().unwrap() as usize, o[1].as_u64().unwrap() as usize);
            (k.clone(), (base + s, base + e))
        })
        .collect();
    (base, ranges)
}

#[test]
fn damaged_safetensors_are_errors_or_differ_only_where_damaged() {
    let good = safetensors_fixture();
    let original = read_safetensors(&good).unwrap();
    let (data_start, ranges) = safetensors_ranges(&good);
    let index_of = |name: &str| original.header.iter().position(|(n, _)| n == name).unwrap();
    let (mut cases, mut errors, mut inert, mut visible, mut data_flips) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut wrong = Vec::new();
    for offset in 0..good.len() {
        for mask in PATTERNS {
            cases += 1;
            let damaged = flipped(&good, offset, mask);
            let result = catch_unwind(|| read_safetensors(&damaged));
            let Ok(result) = result else {
                wrong.push(format!("flip {mask:#04x} at {offset}: panic"));
                continue;
            };
            if offset >= data_start {
                // No checksum: the file reads back with only the tensor holding the byte changed.
                data_flips += 1;
                let Ok(view) = result else {
                    wrong.push(format!("flip {mask:#04x} at {offset} (data): {}", result.unwrap_err()));
                    continue;
                };
                let (name, _) = ranges.iter().find(|(_, (s, e))| (*s..*e).contains(&offset)).unwrap();
                let hit = index_of(name);
                let ok = view.header == original.header
                    && (0..original.data.len()).all(|i| match i == hit {
                        false => view.data[i] == original.data[i],
                        // Any non-zero byte reads as `true`: a flip may keep a bool's value.
                        true => view.data[i] != original.data[i] || original.header[i].1.starts_with("bool"),
                    });
                if !ok {
                    wrong.push(format!("flip {mask:#04x} at {offset} (data of `{name}`): {view:?}"));
                }
                continue;
            }
            match result {
                Err(_) => errors += 1,
                Ok(view) if view == original => inert += 1,
                Ok(view) if view.header != original.header => visible += 1,
                Ok(view) => wrong.push(format!(
                    "flip {mask:#04x} at {offset} (header): same header, data {view:?}"
                )),
            }
        }
    }
    let mut cuts = 0usize;
    for len in 0..good.len() {
        cases += 1;
        cuts += 1;
        match catch_unwind(|| read_safetensors(&good[..len])) {
            Err(_) => wrong.push(format!("truncated to {len}: panic")),
            Ok(Ok(_)) => wrong.push(format!("truncated to {len}: accepted")),
            Ok(Err(_)) => {}
        }
    }
    eprintln!(
        "damaged safetensors: {cases} cases ({} bytes): {data_flips} data flips read back with only that tensor changed; \
         header flips: {errors} errors, {visible} visibly different headers, {inert} inert; {cuts} truncations, all errors",
        good.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(errors > 0 && data_flips > 0);
}

// ---------------------------------------------------------------- GGUF

fn gguf_fixture() -> Vec<u8> {
    std::fs::read(crate_dir().join("../runtime/tests/data/gguf/fixture.gguf")).unwrap()
}

/// What a reader sees of a GGUF file: version, alignment, metadata, tensor infos, and every
/// tensor dequantised (or the error it gives).
#[derive(Debug, PartialEq)]
struct GgufView {
    header: String,
    data: Vec<Result<TensorBits, String>>,
}

fn read_gguf(bytes: &[u8]) -> Result<GgufView, RuntimeError> {
    let f = GgufFile::from_bytes("damaged.gguf", bytes.to_vec())?;
    let header = format!(
        "v{} align {} data at {} {:?} {:?}",
        f.version(),
        f.alignment(),
        f.data_offset(),
        f.metadata(),
        f.tensors()
    );
    let data = f
        .tensors()
        .iter()
        .map(|t| f.tensor(t.name()).map(|t| bits(&t)).map_err(|e| e.to_string()))
        .collect();
    Ok(GgufView { header, data })
}

#[test]
fn damaged_gguf_files_are_errors_or_differ_only_where_damaged() {
    let good = gguf_fixture();
    let original = read_gguf(&good).unwrap();
    assert!(original.data.iter().all(|d| d.is_ok()), "{:?}", original.data);
    let file = GgufFile::from_bytes("fixture.gguf", good.clone()).unwrap();
    let data_start = file.data_offset();
    let ranges: Vec<(usize, usize)> = file
        .tensors()
        .iter()
        .map(|t| {
            let s = t.file_offset().unwrap();
            (s, s + t.byte_size().unwrap())
        })
        .collect();
    let data_end = ranges.iter().map(|r| r.1).max().unwrap();
    let (mut cases, mut errors, mut inert, mut visible, mut data_flips) = (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut wrong = Vec::new();
    for offset in 0..good.len() {
        for mask in PATTERNS {
            cases += 1;
            let damaged = flipped(&good, offset, mask);
            let Ok(result) = catch_unwind(|| read_gguf(&damaged)) else {
                wrong.push(format!("flip {mask:#04x} at {offset}: panic"));
                continue;
            };
            if offset >= data_start {
                data_flips += 1;
                let Ok(view) = result else {
                    wrong.push(format!("flip {mask:#04x} at {offset} (data): {}", result.unwrap_err()));
                    continue;
                };
                // Only tensors holding the byte may change (a quantised block's value can
                // survive a flip, so they need not).
                let ok = view.header == original.header
                    && ranges
                        .iter()
                        .enumerate()
                        .all(|(i, (s, e))| (*s..*e).contains(&offset) || view.data[i] == original.data[i]);
                if !ok {
                    wrong.push(format!("flip {mask:#04x} at {offset} (data): other tensors changed"));
                }
                continue;
            }
            match result {
                Err(_) => errors += 1,
                Ok(view) if view == original => inert += 1,
                Ok(view) if view.header != original.header => visible += 1,
                Ok(_) => wrong.push(format!(
                    "flip {mask:#04x} at {offset} (header): same header, other data"
                )),
            }
        }
    }
    let mut cuts = 0usize;
    for len in 0..good.len() {
        cases += 1;
        cuts += 1;
        match catch_unwind(|| read_gguf(&good[..len])) {
            Err(_) => wrong.push(format!("truncated to {len}: panic")),
            // Only trailing bytes no tensor covers may go.
            Ok(Ok(view)) if len >= data_end && view == original => {}
            Ok(Ok(_)) => wrong.push(format!("truncated to {len}: accepted")),
            Ok(Err(_)) => {}
        }
    }
    eprintln!(
        "damaged GGUF: {cases} cases ({} bytes): {data_flips} data flips read back with only that tensor changed; \
         header flips: {errors} errors, {visible} visibly different headers, {inert} inert; {cuts} truncations, all errors",
        good.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(errors > 0 && data_flips > 0);
}
