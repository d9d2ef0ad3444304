//! The GGUF reader against files built here by hand (expected values worked out from the
//! format's definition), against a fixture written by the independent `gguf` Python package
//! (`scripts/make_gguf_fixture.py`, expected values from gguf-py's own dequantisation), and
//! against malformed files, every one of which must be an error rather than a panic.

use std::path::PathBuf;

use half::f16;
use mlc_runtime::gguf::{GgmlType, GgufFile, MetaArray, MetaType, MetaValue, dequantize};
use mlc_runtime::{QuantFormat, RuntimeError};

// ---------------------------------------------------------------- a tiny GGUF writer

const F32: u32 = 0;
const F16: u32 = 1;
const Q4_0: u32 = 2;
const Q4_1: u32 = 3;
const Q8_0: u32 = 8;
const Q6_K: u32 = 14;
const BF16: u32 = 30;

const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// A GGUF string: `u64` length, then the bytes.
fn gstr(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// An array value (after its `T_ARRAY` tag): element type, count, encoded elements.
fn garray(elem_type: u32, n: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem_type.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

/// Builds GGUF files; everything can be set to a wrong value on purpose.
struct Builder {
    version: u32,
    alignment: usize,
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            version: 3,
            alignment: 32,
            kv: Vec::new(),
            n_kv: 0,
            infos: Vec::new(),
            n_tensors: 0,
            data: Vec::new(),
        }
    }

    /// A metadata entry with a raw key, type tag and encoded value.
    fn kv_raw(&mut self, key: &[u8], type_id: u32, value: &[u8]) -> &mut Builder {
        self.kv.extend(gstr(key));
        self.kv.extend_from_slice(&type_id.to_le_bytes());
        self.kv.extend_from_slice(value);
        self.n_kv += 1;
        self
    }

    fn kv(&mut self, key: &str, type_id: u32, value: &[u8]) -> &mut Builder {
        self.kv_raw(key.as_bytes(), type_id, value)
    }

    /// Sets `general.alignment` (as a u32) and uses it for the layout.
    fn alignment(&mut self, a: u32) -> &mut Builder {
        self.alignment = a as usize;
        self.kv("general.alignment", T_U32, &a.to_le_bytes())
    }

    /// A tensor info only, with whatever offset.
    fn info_raw(&mut self, name: &[u8], ne: &[u64], type_id: u32, offset: u64) -> &mut Builder {
        self.infos.extend(gstr(name));
        self.infos.extend_from_slice(&(ne.len() as u32).to_le_bytes());
        for d in ne {
            self.infos.extend_from_slice(&d.to_le_bytes());
        }
        self.infos.extend_from_slice(&type_id.to_le_bytes());
        self.infos.extend_from_slice(&offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    /// A tensor: its info and its bytes, placed at the next aligned offset of the data section.
    fn tensor(&mut self, name: &str, ne: &[u64], type_id: u32, bytes: &[u8]) -> &mut Builder {
        let pad = self.data.len().next_multiple_of(self.alignment) - self.data.len();
        self.data.extend(std::iter::repeat_n(0u8, pad));
        let offset = self.data.len() as u64;
        self.data.extend_from_slice(bytes);
        self.info_raw(name.as_bytes(), ne, type_id, offset)
    }

    fn finish(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.n_tensors.to_le_bytes());
        out.extend_from_slice(&self.n_kv.to_le_bytes());
        out.extend_from_slice(&self.kv);
        out.extend_from_slice(&self.infos);
        let pad = out.len().next_multiple_of(self.alignment) - out.len();
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(&self.data);
        out
    }

    fn open(&self) -> Result<GgufFile, RuntimeError> {
        GgufFile::from_bytes("test.gguf", self.finish())
    }
}

fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The message of an error, which must be a [`RuntimeError::Gguf`].
fn gguf_err(r: Result<GgufFile, RuntimeError>) -> String {
    match r {
        Err(RuntimeError::Gguf { message, .. }) => message,
        Err(e) => panic!("expected a Gguf error, got {e:?}"),
        Ok(f) => panic!("expected an error, got {f:?}"),
    }
}

fn assert_contains(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "`{message}` does not mention `{p}`");
    }
}

// ---------------------------------------------------------------- valid files, values by hand

#[test]
fn f32_tensor_shape_is_reversed_ne() {
    let values: Vec<f32> = (0..6).map(|i| i as f32 - 2.5).collect();
    let f = Builder::new()
        .tensor("w", &[3, 2], F32, &f32_bytes(&values))
        .open()
        .unwrap();
    let info = f.tensor_info("w").unwrap();
    assert_eq!(info.ne(), &[3, 2]);
    assert_eq!(info.shape(), &[2, 3]);
    assert_eq!(info.numel(), 6);
    assert_eq!(info.byte_size(), Some(24));
    assert_eq!(info.ggml_type(), GgmlType::F32);
    assert_eq!(info.ggml_type().name(), "F32");
    let t = f.tensor("w").unwrap();
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.as_f32().unwrap(), values.as_slice());
    assert_eq!(f.tensor_bytes("w").unwrap(), f32_bytes(&values).as_slice());
}

#[test]
fn f16_and_bf16_values() {
    // f16 bits: 1.0, -2.5, 65504 (max), 2^-24 (smallest subnormal), -0.0.
    let h: [u16; 5] = [0x3C00, 0xC100, 0x7BFF, 0x0001, 0x8000];
    // bf16 bits: 1.0, -3.0, the largest finite, the smallest subnormal, 0.
    let b: [u16; 5] = [0x3F80, 0xC040, 0x7F7F, 0x0001, 0x0000];
    let bytes = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>();
    let f = Builder::new()
        .tensor("h", &[5], F16, &bytes(&h))
        .tensor("b", &[5, 1], BF16, &bytes(&b))
        .open()
        .unwrap();
    let th = f.tensor("h").unwrap();
    assert_eq!(th.shape(), &[5]);
    let want_h = [1.0f32, -2.5, 65504.0, 2f32.powi(-24), -0.0];
    let got_h = th.as_f32().unwrap();
    for (g, w) in got_h.iter().zip(want_h) {
        assert_eq!(g.to_bits(), w.to_bits(), "{got_h:?}");
    }
    let tb = f.tensor("b").unwrap();
    assert_eq!(tb.shape(), &[1, 5]);
    let want_b = [
        1.0f32,
        -3.0,
        f32::from_bits(0x7F7F_0000),
        f32::from_bits(0x0001_0000),
        0.0,
    ];
    let got_b = tb.as_f32().unwrap();
    for (g, w) in got_b.iter().zip(want_b) {
        assert_eq!(g.to_bits(), w.to_bits(), "{got_b:?}");
    }
}

#[test]
fn q4_0_block_by_hand() {
    // d = 0.5; byte j holds element j (low nibble j) and element j + 16 (high nibble 15 - j).
    let mut block = f16_bytes(0.5).to_vec();
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let f = Builder::new().tensor("q", &[32], Q4_0, &block).open().unwrap();
    assert_eq!(f.tensor_info("q").unwrap().byte_size(), Some(18));
    let got = f.tensor("q").unwrap().to_f32_vec();
    let mut want = vec![0.0f32; 32];
    for j in 0..16 {
        want[j] = (j as f32 - 8.0) * 0.5;
        want[j + 16] = ((15 - j) as f32 - 8.0) * 0.5;
    }
    assert_eq!(got, want);
    assert_eq!(got[0], -4.0);
    assert_eq!(got[15], 3.5);
    assert_eq!(got[16], 3.5);
    assert_eq!(got[31], -4.0);
}

#[test]
fn q4_1_block_by_hand() {
    // d = 0.5, m = -1, low nibbles 0..15, high nibbles 15..0: value = q * 0.5 - 1.
    let mut block = f16_bytes(0.5).to_vec();
    block.extend(f16_bytes(-1.0));
    block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    // Two rows of one block each: ne = [32, 2], shape [2, 32].
    let mut second = f16_bytes(2.0).to_vec();
    second.extend(f16_bytes(0.25));
    second.extend([0xF0u8; 16]); // low 0, high 15
    let bytes = [block, second].concat();
    let f = Builder::new().tensor("q", &[32, 2], Q4_1, &bytes).open().unwrap();
    let t = f.tensor("q").unwrap();
    assert_eq!(t.shape(), &[2, 32]);
    let got = t.to_f32_vec();
    for j in 0..16 {
        assert_eq!(got[j], j as f32 * 0.5 - 1.0, "element {j}");
        assert_eq!(got[j + 16], (15 - j) as f32 * 0.5 - 1.0, "element {}", j + 16);
        assert_eq!(got[32 + j], 0.25);
        assert_eq!(got[48 + j], 30.25);
    }
}

#[test]
fn q8_0_blocks_by_hand() {
    // Two blocks: d = 0.25 with q = 8 i - 128 (-128..=120), and d = -3 with q = i - 16.
    let mut bytes = f16_bytes(0.25).to_vec();
    bytes.extend((0..32).map(|i| (8 * i - 128) as i8 as u8));
    bytes.extend(f16_bytes(-3.0));
    bytes.extend((0..32).map(|i| (i - 16) as i8 as u8));
    let f = Builder::new().tensor("q", &[64], Q8_0, &bytes).open().unwrap();
    let got = f.tensor("q").unwrap().to_f32_vec();
    for i in 0..32 {
        assert_eq!(got[i], (8 * i as i32 - 128) as f32 * 0.25);
        assert_eq!(got[32 + i], (i as i32 - 16) as f32 * -3.0);
    }
    assert_eq!(got[0], -32.0);
    assert_eq!(got[31], 30.0);
}

#[test]
fn q8_0_and_q4_1_matrices_kept_in_blocks() {
    // Row 0: d = 0.5, q = i - 16; row 1: d = -2, q = 3 (ne = [32, 2], shape [2, 32]).
    let mut bytes = f16_bytes(0.5).to_vec();
    bytes.extend((0..32).map(|i| (i - 16) as i8 as u8));
    bytes.extend(f16_bytes(-2.0));
    bytes.extend([3u8; 32]);
    let f = Builder::new()
        .tensor("q8", &[32, 2], Q8_0, &bytes)
        .tensor("vec", &[64], Q8_0, &bytes)
        .tensor("f", &[2, 2], F32, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]))
        .open()
        .unwrap();
    let q = f.quantized("q8").unwrap().expect("a Q8_0 matrix");
    assert_eq!((q.format(), q.rows(), q.cols()), (QuantFormat::Int8, 2, 32));
    let got = q.dequantize();
    for i in 0..32 {
        assert_eq!(got[i], (i as f32 - 16.0) * 0.5);
        assert_eq!(got[32 + i], -6.0);
    }
    // Rank 1 and unquantised tensors are not matrices of blocks.
    assert!(f.quantized("vec").unwrap().is_none());
    assert!(f.quantized("f").unwrap().is_none());
    assert!(matches!(f.quantized("nope"), Err(RuntimeError::NoSuchTensor { .. })));
    // The fixture's Q4_1 matrix, in blocks, holds gguf-py's values bit for bit; Q4_0 is not
    // kept in blocks.
    let f = GgufFile::open(data_dir().join("fixture.gguf")).unwrap();
    let expected = mlc_runtime::safetensors_io::load(data_dir().join("fixture_expected.safetensors")).unwrap();
    let q = f.quantized("q4_1.mat").unwrap().expect("a Q4_1 matrix");
    assert_eq!(q.format(), QuantFormat::Nibble);
    let want = expected.get("q4_1.mat").unwrap();
    assert_eq!(&[q.rows(), q.cols()], want.shape());
    for (i, (a, b)) in q.dequantize().iter().zip(want.to_f32_vec()).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "q4_1.mat[{i}]: mlc {a}, gguf-py {b}");
    }
    assert!(f.quantized("q4_0.mat").unwrap().is_none());
}

#[test]
fn dequantize_function_checks_whole_blocks_and_type() {
    let mut block = f16_bytes(1.0).to_vec();
    block.extend([0x88u8; 16]);
    assert_eq!(dequantize(GgmlType::Q4_0, &block), Some(vec![0.0; 32]));
    assert_eq!(dequantize(GgmlType::Q4_0, &block[..17]), None);
    assert_eq!(dequantize(GgmlType::Q6_K, &[0; 210]), None);
    assert_eq!(dequantize(GgmlType::Unknown(99), &[]), None);
    assert_eq!(dequantize(GgmlType::F32, &1.5f32.to_le_bytes()), Some(vec![1.5]));
}

#[test]
fn ggml_type_ids_names_and_layouts() {
    for id in 0..64 {
        let t = GgmlType::from_id(id);
        assert_eq!(t.id(), id);
        if let Some((block, bytes)) = t.block_layout() {
            assert!(block > 0 && bytes > 0, "{t}");
        }
    }
    assert_eq!(GgmlType::from_id(14), GgmlType::Q6_K);
    assert_eq!(GgmlType::Q6_K.block_layout(), Some((256, 210)));
    assert_eq!(GgmlType::Q4_K.block_layout(), Some((256, 144)));
    assert_eq!(GgmlType::from_id(4), GgmlType::Unknown(4));
    assert_eq!(GgmlType::Unknown(4).to_string(), "type 4");
    assert_eq!(GgmlType::BF16.to_string(), "BF16");
    assert!(GgmlType::Q8_0.is_supported() && !GgmlType::Q5_0.is_supported());
}

#[test]
fn metadata_of_every_type_and_typed_getters() {
    let nested = {
        let inner1 = garray(T_I32, 2, &[1i32.to_le_bytes(), (-2i32).to_le_bytes()].concat());
        let inner2 = garray(T_STRING, 1, &gstr(b"x"));
        garray(T_ARRAY, 2, &[inner1, inner2].concat())
    };
    let f = Builder::new()
        .kv("a.u8", T_U8, &[200])
        .kv("a.i8", T_I8, &[0x9C]) // -100
        .kv("a.u16", T_U16, &60000u16.to_le_bytes())
        .kv("a.i16", T_I16, &(-30000i16).to_le_bytes())
        .kv("a.u32", T_U32, &4_000_000_000u32.to_le_bytes())
        .kv("a.i32", T_I32, &(-7i32).to_le_bytes())
        .kv("a.f32", T_F32, &0.1f32.to_le_bytes())
        .kv("a.bool", T_BOOL, &[1])
        .kv("a.str", T_STRING, &gstr("héllo".as_bytes()))
        .kv("a.u64", T_U64, &u64::MAX.to_le_bytes())
        .kv("a.i64", T_I64, &i64::MIN.to_le_bytes())
        .kv("a.f64", T_F64, &0.1f64.to_le_bytes())
        .kv(
            "a.strs",
            T_ARRAY,
            &garray(T_STRING, 2, &[gstr(b"<s>"), gstr(b"")].concat()),
        )
        .kv(
            "a.u32s",
            T_ARRAY,
            &garray(T_U32, 2, &[7u32.to_le_bytes(), 3_000_000_000u32.to_le_bytes()].concat()),
        )
        .kv(
            "a.i16s",
            T_ARRAY,
            &garray(T_I16, 2, &[(-1i16).to_le_bytes(), 5i16.to_le_bytes()].concat()),
        )
        .kv("a.f64s", T_ARRAY, &garray(T_F64, 1, &0.5f64.to_le_bytes()))
        .kv("a.empty", T_ARRAY, &garray(T_U8, 0, &[]))
        .kv("a.nested", T_ARRAY, &nested)
        .open()
        .unwrap();

    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 32);
    assert_eq!(f.metadata().len(), 18);
    assert_eq!(f.metadata()[0].0, "a.u8");
    assert_eq!(f.get("a.u8"), Some(&MetaValue::U8(200)));
    assert_eq!(f.get("a.i8"), Some(&MetaValue::I8(-100)));
    assert_eq!(f.get("a.u16"), Some(&MetaValue::U16(60000)));
    assert_eq!(f.get("a.i16"), Some(&MetaValue::I16(-30000)));
    assert_eq!(f.get("a.i64"), Some(&MetaValue::I64(i64::MIN)));
    assert_eq!(f.get("a.f64"), Some(&MetaValue::F64(0.1)));
    assert_eq!(f.get("a.bool").unwrap().meta_type(), MetaType::Bool);

    // Integer getters accept any integer type that fits.
    assert_eq!(f.get_u32("a.u8").unwrap(), 200);
    assert_eq!(f.get_usize("a.u16").unwrap(), 60000);
    assert_eq!(f.get_u32("a.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_i64("a.i32").unwrap(), -7);
    assert_eq!(f.get_u64("a.u64").unwrap(), u64::MAX);
    assert_eq!(f.get_i64("a.i64").unwrap(), i64::MIN);
    assert_eq!(f.get_f32("a.f32").unwrap(), 0.1f32);
    assert_eq!(f.get_f32("a.f64").unwrap(), 0.1f32);
    assert_eq!(f.get_f32("a.u8").unwrap(), 200.0);
    assert!(f.get_bool("a.bool").unwrap());
    assert_eq!(f.get_str("a.str").unwrap(), "héllo");
    assert_eq!(f.get_str_array("a.strs").unwrap(), ["<s>".to_string(), String::new()]);
    assert_eq!(f.get_i32_array("a.i16s").unwrap(), vec![-1, 5]);
    assert_eq!(f.get_f32_array("a.f64s").unwrap(), vec![0.5]);
    assert_eq!(f.get_f32_array("a.u32s").unwrap(), vec![7.0, 3e9]);
    assert!(f.get_array("a.empty").unwrap().is_empty());
    let n = f.get_array("a.nested").unwrap();
    assert_eq!(
        n,
        &MetaArray::Array(vec![MetaArray::I32(vec![1, -2]), MetaArray::String(vec!["x".into()])])
    );

    // Errors name the key and say what is wrong.
    let msg = |r: RuntimeError| match r {
        RuntimeError::Gguf { path, message } => {
            assert_eq!(path, "test.gguf");
            message
        }
        e => panic!("{e:?}"),
    };
    assert_contains(&msg(f.get_str("nope").unwrap_err()), &["no metadata key `nope`"]);
    assert_contains(
        &msg(f.get_str("a.u8").unwrap_err()),
        &["`a.u8`", "u8", "200", "expected a string"],
    );
    assert_contains(&msg(f.get_u32("a.i32").unwrap_err()), &["`a.i32`", "-7"]);
    assert_contains(&msg(f.get_u32("a.u64").unwrap_err()), &["`a.u64`", "u32"]);
    assert_contains(
        &msg(f.get_i32_array("a.u32s").unwrap_err()),
        &["`a.u32s`", "array of 2 u32"],
    );
    assert_contains(&msg(f.get_str_array("a.u32s").unwrap_err()), &["array of strings"]);
    assert!(f.get_f32("a.str").is_err());
    assert!(f.get_bool("a.u8").is_err());

    // Display keeps long arrays short.
    assert_eq!(f.get("a.strs").unwrap().to_string(), r#"["<s>", ""]"#);
    let long = MetaValue::Array(MetaArray::I32((0..100).collect()));
    assert_eq!(long.to_string(), "[0, 1, 2, 3, … (100 × i32)]");
}

#[test]
fn custom_alignment_version_2_scalar_and_empty_tensors() {
    let mut b = Builder::new();
    b.version = 2;
    b.alignment(64)
        .tensor("scalar", &[], F32, &2.5f32.to_le_bytes())
        .tensor("empty", &[32, 0], Q4_0, &[])
        .tensor("v", &[2], F32, &f32_bytes(&[1.0, 2.0]));
    let f = b.open().unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    for info in f.tensors() {
        assert_eq!(info.offset() % 64, 0);
        assert_eq!(info.file_offset().unwrap(), f.data_offset() + info.offset() as usize);
    }
    let s = f.tensor("scalar").unwrap();
    assert_eq!(s.shape(), &[] as &[usize]);
    assert_eq!(s.to_f32_vec(), vec![2.5]);
    let e = f.tensor("empty").unwrap();
    assert_eq!(e.shape(), &[0, 32]);
    assert_eq!(e.numel(), 0);
    assert_eq!(f.tensor("v").unwrap().to_f32_vec(), vec![1.0, 2.0]);
    let all: Vec<_> = f.tensors_f32().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        all.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["scalar", "empty", "v"]
    );
}

#[test]
fn open_reads_a_file_from_disk() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gguf_open_test.gguf");
    let bytes = Builder::new()
        .kv("general.name", T_STRING, &gstr(b"disk"))
        .tensor("w", &[2], F32, &f32_bytes(&[3.0, 4.0]))
        .finish();
    std::fs::write(&path, bytes).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.path(), path.display().to_string());
    assert_eq!(f.get_str("general.name").unwrap(), "disk");
    assert_eq!(f.tensor("w").unwrap().to_f32_vec(), vec![3.0, 4.0]);
    match GgufFile::open(path.with_extension("missing")) {
        Err(RuntimeError::Io { .. }) => {}
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------- the gguf-py fixture

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf")
}

fn fixture_bytes() -> Vec<u8> {
    std::fs::read(data_dir().join("fixture.gguf")).unwrap()
}

#[test]
fn fixture_metadata_matches_the_script() {
    let f = GgufFile::open(data_dir().join("fixture.gguf")).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "mlctest");
    assert_eq!(f.get("test.u8"), Some(&MetaValue::U8(200)));
    assert_eq!(f.get("test.i8"), Some(&MetaValue::I8(-100)));
    assert_eq!(f.get("test.u16"), Some(&MetaValue::U16(60000)));
    assert_eq!(f.get("test.i16"), Some(&MetaValue::I16(-30000)));
    assert_eq!(f.get("test.u32"), Some(&MetaValue::U32(4_000_000_000)));
    assert_eq!(f.get("test.i32"), Some(&MetaValue::I32(-2_000_000_000)));
    assert_eq!(f.get("test.f32"), Some(&MetaValue::F32(0.1)));
    assert_eq!(f.get("test.bool"), Some(&MetaValue::Bool(true)));
    assert_eq!(f.get_str("test.string").unwrap(), "héllo, GGUF ✓");
    assert_eq!(f.get("test.u64"), Some(&MetaValue::U64((1 << 63) + 5)));
    assert_eq!(f.get("test.i64"), Some(&MetaValue::I64(-(1 << 62))));
    assert_eq!(f.get("test.f64"), Some(&MetaValue::F64(2.5e-300)));
    assert_eq!(
        f.get_str_array("test.str_array").unwrap(),
        ["<s>", "</s>", "hello", "wörld"]
    );
    assert_eq!(f.get_i32_array("test.i32_array").unwrap(), vec![1, -2, 3, i32::MAX]);
    assert_eq!(f.get_f32_array("test.f32_array").unwrap(), vec![0.5, -1.25, 3.0]);
    assert_eq!(
        f.get_array("test.u16_array").unwrap(),
        &MetaArray::U16(vec![1, 2, 65535])
    );
    assert_eq!(
        f.get_array("test.bool_array").unwrap(),
        &MetaArray::Bool(vec![true, false, true])
    );
    assert_eq!(
        f.get_array("test.nested").unwrap(),
        &MetaArray::Array(vec![
            MetaArray::I32(vec![1, 2]),
            MetaArray::I32(vec![3]),
            MetaArray::String(vec!["a".into(), "b".into(), "c".into()]),
        ])
    );
    assert_eq!(f.get_usize("mlctest.block_count").unwrap(), 2);
}

#[test]
fn fixture_tensors_match_gguf_py_bit_for_bit() {
    let f = GgufFile::open(data_dir().join("fixture.gguf")).unwrap();
    let expected = mlc_runtime::safetensors_io::load(data_dir().join("fixture_expected.safetensors")).unwrap();
    let types: Vec<(&str, GgmlType)> = f.tensors().iter().map(|t| (t.name(), t.ggml_type())).collect();
    assert_eq!(
        types,
        [
            ("f32.mat", GgmlType::F32),
            ("f16.mat", GgmlType::F16),
            ("bf16.mat", GgmlType::BF16),
            ("q4_0.mat", GgmlType::Q4_0),
            ("q4_1.mat", GgmlType::Q4_1),
            ("q8_0.cube", GgmlType::Q8_0),
            ("f32.tail", GgmlType::F32),
        ]
    );
    assert_eq!(expected.len(), types.len());
    for item in f.tensors_f32() {
        let (name, got) = item.unwrap();
        let want = expected.get(name).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name}");
        let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
        assert_eq!(g.len(), w.len(), "{name}");
        for (i, (a, b)) in g.iter().zip(&w).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{name}[{i}]: mlc {a}, gguf-py {b}");
        }
    }
    assert_eq!(f.tensor_info("q8_0.cube").unwrap().shape(), &[2, 3, 32]);
    // The script makes the last tensor end at the end of the file.
    let end = f
        .tensors()
        .iter()
        .map(|t| t.file_offset().unwrap() + t.byte_size().unwrap())
        .max();
    assert_eq!(end, Some(f.len()));
}

#[test]
fn every_truncation_of_the_fixture_is_an_error() {
    let bytes = fixture_bytes();
    assert!(GgufFile::from_bytes("full", bytes.clone()).is_ok());
    for n in 0..bytes.len() {
        let r = GgufFile::from_bytes("cut", bytes[..n].to_vec());
        assert!(r.is_err(), "truncated to {n} bytes, the fixture still opened");
    }
}

#[test]
fn every_truncation_of_a_built_file_is_an_error() {
    let mut q4 = f16_bytes(0.5).to_vec();
    q4.extend([0x12u8; 16]);
    let bytes = Builder::new()
        .kv("s", T_STRING, &gstr(b"abc"))
        .kv("b", T_BOOL, &[0])
        .kv("n", T_ARRAY, &garray(T_ARRAY, 1, &garray(T_U16, 2, &[1, 0, 2, 0])))
        .tensor("a", &[2], F32, &f32_bytes(&[1.0, 2.0]))
        .tensor("q", &[32], Q4_0, &q4)
        .finish();
    assert!(GgufFile::from_bytes("full", bytes.clone()).is_ok());
    for n in 0..bytes.len() {
        assert!(GgufFile::from_bytes("cut", bytes[..n].to_vec()).is_err(), "{n}");
    }
}

// ---------------------------------------------------------------- malformed files

fn header(version: u32, n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut v = b"GGUF".to_vec();
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&n_tensors.to_le_bytes());
    v.extend_from_slice(&n_kv.to_le_bytes());
    v
}

fn open_bytes(bytes: Vec<u8>) -> Result<GgufFile, RuntimeError> {
    GgufFile::from_bytes("bad.gguf", bytes)
}

#[test]
fn bad_magic_and_versions() {
    let mut bytes = fixture_bytes();
    bytes[..4].copy_from_slice(b"GGML");
    assert_contains(&gguf_err(open_bytes(bytes)), &["not a GGUF file", "GGML"]);
    assert_contains(&gguf_err(open_bytes(b"GG".to_vec())), &["not a GGUF file"]);
    assert_contains(&gguf_err(open_bytes(Vec::new())), &["not a GGUF file"]);

    let mut b = Builder::new();
    b.version = 99;
    assert_contains(&gguf_err(b.open()), &["unsupported GGUF version 99"]);
    b.version = 1;
    assert_contains(&gguf_err(b.open()), &["version 1"]);
    b.version = 3u32.swap_bytes();
    assert_contains(&gguf_err(b.open()), &["big-endian"]);

    let err = open_bytes(header(99, 0, 0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad.gguf: unsupported GGUF version 99; mlc reads versions 2 and 3"
    );
}

#[test]
fn huge_counts_and_lengths_are_refused_before_allocating() {
    assert_contains(
        &gguf_err(open_bytes(header(3, u64::MAX, 0))),
        &["18446744073709551615 tensors"],
    );
    assert_contains(&gguf_err(open_bytes(header(3, 0, u64::MAX))), &["metadata entries"]);
    assert_contains(&gguf_err(open_bytes(header(3, 1 << 40, 1 << 40))), &["more than"]);

    // A key whose length is larger than the file.
    let mut v = header(3, 0, 1);
    v.extend_from_slice(&(u64::MAX - 3).to_le_bytes());
    v.extend_from_slice(&[0; 16]);
    assert_contains(
        &gguf_err(open_bytes(v)),
        &["the length of the key of metadata entry 0", "more than"],
    );

    // A string value of 2^40 bytes.
    let mut s = (1u64 << 40).to_le_bytes().to_vec();
    s.extend_from_slice(b"abc");
    let e = gguf_err(Builder::new().kv("big.string", T_STRING, &s).open());
    assert_contains(&e, &["`big.string`", "1099511627776"]);

    // Arrays whose element counts cannot fit, for each element size.
    for (t, n) in [
        (T_U8, 1u64 << 50),
        (T_U64, 1 << 20),
        (T_STRING, 1 << 20),
        (T_ARRAY, 1 << 20),
        (T_BOOL, u64::MAX),
    ] {
        let e = gguf_err(Builder::new().kv("big.array", T_ARRAY, &garray(t, n, &[0; 16])).open());
        assert_contains(&e, &["the length of metadata `big.array`", "more than"]);
    }

    // A tensor name of huge length.
    let mut b = Builder::new();
    b.infos.extend_from_slice(&(1u64 << 62).to_le_bytes());
    b.infos.extend_from_slice(&[0u8; 24]);
    b.n_tensors = 1;
    assert_contains(&gguf_err(b.open()), &["the name of tensor info 0"]);
}

#[test]
fn unsupported_and_unknown_types_are_named_on_access() {
    let f = Builder::new()
        .tensor("blk.0.ffn_down.weight", &[256], Q6_K, &[0u8; 210])
        .tensor("odd", &[4], 77, &[0u8; 4])
        .open()
        .unwrap();
    let info = f.tensor_info("blk.0.ffn_down.weight").unwrap();
    assert_eq!(info.ggml_type(), GgmlType::Q6_K);
    assert_eq!(info.byte_size(), Some(210));
    let e = f.tensor("blk.0.ffn_down.weight").unwrap_err();
    assert!(matches!(e, RuntimeError::GgufUnsupportedType { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "test.gguf: tensor `blk.0.ffn_down.weight` has type Q6_K; mlc supports F32, F16, BF16, Q4_0, Q4_1, Q8_0"
    );
    // The raw bytes of a known type are still available.
    assert_eq!(f.tensor_bytes("blk.0.ffn_down.weight").unwrap().len(), 210);
    assert_eq!(f.tensor_info("odd").unwrap().byte_size(), None);
    assert_contains(&f.tensor("odd").unwrap_err().to_string(), &["`odd`", "type 77"]);
    assert!(f.tensor_bytes("odd").is_err());
    assert!(f.tensors_f32().all(|r| r.is_err()));
    assert!(matches!(f.tensor("nope"), Err(RuntimeError::NoSuchTensor { .. })));
}

#[test]
fn tensor_data_outside_the_file_or_misaligned() {
    let e = gguf_err(Builder::new().info_raw(b"w", &[4], F32, 1 << 20).open());
    assert_contains(&e, &["tensor `w`", "outside the file"]);
    let e = gguf_err(Builder::new().info_raw(b"w", &[4], F32, u64::MAX - 31).open());
    assert_contains(&e, &["tensor `w`", "outside the file"]);
    // The data is one byte short.
    let e = gguf_err(Builder::new().tensor("w", &[4], F32, &[0u8; 15]).open());
    assert_contains(&e, &["tensor `w`", "16 bytes", "outside the file"]);
    let e = gguf_err(
        Builder::new()
            .tensor("a", &[1], F32, &[0; 64])
            .info_raw(b"b", &[1], F32, 4)
            .open(),
    );
    assert_contains(&e, &["tensor `b`", "offset 4", "alignment 32"]);
}

#[test]
fn bad_dimensions() {
    let e = gguf_err(Builder::new().info_raw(b"w", &[1, 1, 1, 1, 1], F32, 0).open());
    assert_contains(&e, &["tensor `w` has 5 dimensions", "at most 4"]);
    let mut b = Builder::new();
    b.infos.extend(gstr(b"w"));
    b.infos.extend_from_slice(&u32::MAX.to_le_bytes());
    b.infos.extend_from_slice(&[0u8; 64]);
    b.n_tensors = 1;
    assert_contains(&gguf_err(b.open()), &["4294967295 dimensions"]);
    let e = gguf_err(Builder::new().info_raw(b"w", &[1 << 32, 1 << 32, 2], F32, 0).open());
    assert_contains(&e, &["tensor `w`", "overflows"]);
    let e = gguf_err(Builder::new().info_raw(b"w", &[1 << 40, 1 << 22], Q4_0, 0).open());
    assert_contains(&e, &["tensor `w`", "outside the file"]);
    // Rows that are not whole blocks.
    let e = gguf_err(Builder::new().tensor("w", &[48], Q8_0, &[0; 51]).open());
    assert_contains(&e, &["tensor `w` has type Q8_0", "48 elements", "multiple of 32"]);
    let e = gguf_err(Builder::new().tensor("w", &[16, 2], Q4_1, &[0; 20]).open());
    assert_contains(&e, &["tensor `w` has type Q4_1", "16 elements"]);
    // A tensor with no dimensions of a block type has one element: not a whole block.
    let e = gguf_err(Builder::new().tensor("w", &[], Q4_0, &[0; 18]).open());
    assert_contains(&e, &["tensor `w`", "multiple of 32"]);
}

#[test]
fn duplicates_invalid_utf8_bad_values() {
    let e = gguf_err(
        Builder::new()
            .tensor("w", &[1], F32, &[0; 4])
            .tensor("w", &[1], F32, &[0; 4])
            .open(),
    );
    assert_contains(&e, &["two tensors are named `w`"]);
    let e = gguf_err(Builder::new().kv("k", T_U8, &[1]).kv("k", T_U8, &[2]).open());
    assert_contains(&e, &["metadata key `k` appears twice"]);

    let e = gguf_err(Builder::new().kv_raw(b"bad\xFFkey", T_U8, &[1]).open());
    assert_contains(&e, &["the key of metadata entry 0", "UTF-8"]);
    let e = gguf_err(Builder::new().kv("k", T_STRING, &gstr(b"\xC3\x28")).open());
    assert_contains(&e, &["metadata `k`", "UTF-8"]);
    let e = gguf_err(
        Builder::new()
            .kv(
                "k",
                T_ARRAY,
                &garray(T_STRING, 2, &[gstr(b"ok"), gstr(b"\x80")].concat()),
            )
            .open(),
    );
    assert_contains(&e, &["element 1 of metadata `k`", "UTF-8"]);
    let e = gguf_err(Builder::new().info_raw(b"w\xFE", &[1], F32, 0).open());
    assert_contains(&e, &["the name of tensor info 0", "UTF-8"]);

    let e = gguf_err(Builder::new().kv("k", T_BOOL, &[2]).open());
    assert_contains(&e, &["metadata `k`", "byte 2"]);
    let e = gguf_err(Builder::new().kv("k", 13, &[0; 8]).open());
    assert_contains(&e, &["metadata `k`", "invalid value type 13"]);
    let e = gguf_err(Builder::new().kv("k", T_ARRAY, &garray(99, 1, &[0; 8])).open());
    assert_contains(&e, &["the elements of metadata `k`", "invalid value type 99"]);

    // Arrays of arrays nested too deep.
    let mut deep = garray(T_U8, 0, &[]);
    for _ in 0..20 {
        deep = garray(T_ARRAY, 1, &deep);
    }
    let e = gguf_err(Builder::new().kv("k", T_ARRAY, &deep).open());
    assert_contains(&e, &["nests arrays more than"]);

    // general.alignment must be a power of two.
    for a in [0u32, 48] {
        let mut b = Builder::new();
        b.kv("general.alignment", T_U32, &a.to_le_bytes());
        assert_contains(&gguf_err(b.open()), &["`general.alignment`", "power of two"]);
    }
    let e = gguf_err(Builder::new().kv("general.alignment", T_STRING, &gstr(b"32")).open());
    assert_contains(&e, &["`general.alignment`"]);
}

#[test]
fn random_corruption_never_panics() {
    // A deterministic xorshift over single-byte and 8-byte corruptions of the fixture.
    let base = fixture_bytes();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3000 {
        let mut bytes = base.clone();
        let pos = (next() % bytes.len() as u64) as usize;
        if round % 2 == 0 {
            bytes[pos] = next() as u8;
        } else {
            let end = (pos + 8).min(bytes.len());
            let r = next().to_le_bytes();
            bytes[pos..end].copy_from_slice(&r[..end - pos]);
        }
        if let Ok(f) = GgufFile::from_bytes("fuzz", bytes) {
            for r in f.tensors_f32() {
                let _ = r;
            }
            for (k, v) in f.metadata() {
                let _ = (k.len(), v.to_string());
            }
        }
    }
}
