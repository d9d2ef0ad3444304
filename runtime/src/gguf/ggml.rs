//! ggml tensor types: their ids, block layouts, and the dequantisation of the ones mlc reads.

use std::fmt;

use half::f16;
use mlc_kernels::{QuantFormat, QuantMatrix, gemm::QuantError};

/// A ggml tensor element type (`ggml_type`), by its id in the file.
///
/// Every type ggml defines is named, so messages can say what a file holds; only
/// [`GgmlType::SUPPORTED`] can be dequantised by mlc. Ids ggml does not (or no longer)
/// define are kept as [`GgmlType::Unknown`].
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// IEEE half (id 1).
    F16,
    /// 4-bit, blocks of 32: f16 scale `d`, 16 bytes of nibbles; `(q - 8) * d` (id 2).
    Q4_0,
    /// 4-bit, blocks of 32: f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles; `q * d + m` (id 3).
    Q4_1,
    /// 5-bit, blocks of 32 (id 6).
    Q5_0,
    /// 5-bit with minimum, blocks of 32 (id 7).
    Q5_1,
    /// 8-bit, blocks of 32: f16 scale `d`, 32 `i8`; `q * d` (id 8).
    Q8_0,
    /// 8-bit with sum, blocks of 32 (id 9).
    Q8_1,
    /// k-quant 2-bit, super-blocks of 256 (id 10).
    Q2_K,
    /// k-quant 3-bit (id 11).
    Q3_K,
    /// k-quant 4-bit (id 12).
    Q4_K,
    /// k-quant 5-bit (id 13).
    Q5_K,
    /// k-quant 6-bit (id 14).
    Q6_K,
    /// k-quant 8-bit (id 15).
    Q8_K,
    /// i-quant (id 16).
    IQ2_XXS,
    /// i-quant (id 17).
    IQ2_XS,
    /// i-quant (id 18).
    IQ3_XXS,
    /// i-quant (id 19).
    IQ1_S,
    /// i-quant, blocks of 32 (id 20).
    IQ4_NL,
    /// i-quant (id 21).
    IQ3_S,
    /// i-quant (id 22).
    IQ2_S,
    /// i-quant (id 23).
    IQ4_XS,
    /// 8-bit integer (id 24).
    I8,
    /// 16-bit integer (id 25).
    I16,
    /// 32-bit integer (id 26).
    I32,
    /// 64-bit integer (id 27).
    I64,
    /// 64-bit float (id 28).
    F64,
    /// i-quant (id 29).
    IQ1_M,
    /// bfloat16 (id 30).
    BF16,
    /// ternary (id 34).
    TQ1_0,
    /// ternary (id 35).
    TQ2_0,
    /// microscaling FP4, blocks of 32 (id 39).
    MXFP4,
    /// NVIDIA FP4, blocks of 64 (id 40).
    NVFP4,
    /// 1-bit, blocks of 128 (id 41).
    Q1_0,
    /// An id that this version of mlc does not know.
    Unknown(u32),
}

impl GgmlType {
    /// The types mlc dequantises to `f32`.
    pub const SUPPORTED: [GgmlType; 6] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q8_0,
    ];

    /// The type with the given id (an [`GgmlType::Unknown`] one if ggml defines none).
    pub fn from_id(id: u32) -> GgmlType {
        use GgmlType::*;
        match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2_K,
            11 => Q3_K,
            12 => Q4_K,
            13 => Q5_K,
            14 => Q6_K,
            15 => Q8_K,
            16 => IQ2_XXS,
            17 => IQ2_XS,
            18 => IQ3_XXS,
            19 => IQ1_S,
            20 => IQ4_NL,
            21 => IQ3_S,
            22 => IQ2_S,
            23 => IQ4_XS,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            29 => IQ1_M,
            30 => BF16,
            34 => TQ1_0,
            35 => TQ2_0,
            39 => MXFP4,
            40 => NVFP4,
            41 => Q1_0,
            other => Unknown(other),
        }
    }

    /// The id stored in the file.
    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2_K => 10,
            Q3_K => 11,
            Q4_K => 12,
            Q5_K => 13,
            Q6_K => 14,
            Q8_K => 15,
            IQ2_XXS => 16,
            IQ2_XS => 17,
            IQ3_XXS => 18,
            IQ1_S => 19,
            IQ4_NL => 20,
            IQ3_S => 21,
            IQ2_S => 22,
            IQ4_XS => 23,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            IQ1_M => 29,
            BF16 => 30,
            TQ1_0 => 34,
            TQ2_0 => 35,
            MXFP4 => 39,
            NVFP4 => 40,
            Q1_0 => 41,
            Unknown(id) => id,
        }
    }

    /// ggml's name of the type (`Q4_0`, `BF16`, ...); `unknown` for an unknown id.
    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2_K => "Q2_K",
            Q3_K => "Q3_K",
            Q4_K => "Q4_K",
            Q5_K => "Q5_K",
            Q6_K => "Q6_K",
            Q8_K => "Q8_K",
            IQ2_XXS => "IQ2_XXS",
            IQ2_XS => "IQ2_XS",
            IQ3_XXS => "IQ3_XXS",
            IQ1_S => "IQ1_S",
            IQ4_NL => "IQ4_NL",
            IQ3_S => "IQ3_S",
            IQ2_S => "IQ2_S",
            IQ4_XS => "IQ4_XS",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            IQ1_M => "IQ1_M",
            BF16 => "BF16",
            TQ1_0 => "TQ1_0",
            TQ2_0 => "TQ2_0",
            MXFP4 => "MXFP4",
            NVFP4 => "NVFP4",
            Q1_0 => "Q1_0",
            Unknown(_) => "unknown",
        }
    }

    /// `(elements per block, bytes per block)`, as ggml defines them; `None` for an unknown
    /// id. Unquantised types have blocks of one element.
    pub fn block_layout(self) -> Option<(usize, usize)> {
        use GgmlType::*;
        const QK_K: usize = 256;
        Some(match self {
            F32 => (1, 4),
            F16 => (1, 2),
            Q4_0 => (32, 2 + 16),
            Q4_1 => (32, 2 + 2 + 16),
            Q5_0 => (32, 2 + 4 + 16),
            Q5_1 => (32, 2 + 2 + 4 + 16),
            Q8_0 => (32, 2 + 32),
            Q8_1 => (32, 2 + 2 + 32),
            Q2_K => (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
            Q3_K => (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
            Q4_K => (QK_K, 2 + 2 + QK_K / 2 + 12),
            Q5_K => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
            Q6_K => (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
            Q8_K => (QK_K, 4 + QK_K + QK_K / 8),
            IQ2_XXS => (QK_K, 2 + QK_K / 4),
            IQ2_XS => (QK_K, 2 + QK_K / 4 + QK_K / 32),
            IQ3_XXS => (QK_K, 2 + QK_K / 4 + QK_K / 8),
            IQ1_S => (QK_K, 2 + QK_K / 8 + QK_K / 16),
            IQ4_NL => (32, 2 + 16),
            IQ3_S => (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
            IQ2_S => (QK_K, 2 + QK_K / 4 + QK_K / 16),
            IQ4_XS => (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
            I8 => (1, 1),
            I16 => (1, 2),
            I32 => (1, 4),
            I64 => (1, 8),
            F64 => (1, 8),
            IQ1_M => (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
            BF16 => (1, 2),
            TQ1_0 => (QK_K, 2 + 4 * 13),
            TQ2_0 => (QK_K, 2 + 64),
            MXFP4 => (32, 1 + 16),
            NVFP4 => (64, 4 + 32),
            Q1_0 => (128, 2 + 16),
            Unknown(_) => return None,
        })
    }

    /// True for the types mlc dequantises ([`GgmlType::SUPPORTED`]).
    pub fn is_supported(self) -> bool {
        GgmlType::SUPPORTED.contains(&self)
    }
}

/// The name, or `type 77` for an unknown id.
impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgmlType::Unknown(id) => write!(f, "type {id}"),
            t => f.write_str(t.name()),
        }
    }
}

/// Dequantises `bytes`, a whole number of blocks of type `ty`, to `f32` values in order.
///
/// `None` when `ty` is not one of [`GgmlType::SUPPORTED`] or `bytes` is not a whole number
/// of blocks. Values are computed exactly as the format defines them, in `f32`: `Q4_0` as
/// `(q - 8) * d`, `Q4_1` as `q * d + m` (a product, then a sum; no fused multiply-add), `Q8_0`
/// as `q * d`, with the f16 scales widened exactly.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Option<Vec<f32>> {
    if !ty.is_supported() {
        return None;
    }
    let (block, size) = ty.block_layout()?;
    if !bytes.len().is_multiple_of(size) {
        return None;
    }
    let mut out = vec![0.0f32; bytes.len() / size * block];
    dequantize_into(ty, bytes, &mut out).then_some(out)
}

/// Fills `out` (whose length the caller matched to `bytes`) from `bytes`; false for a type
/// mlc does not dequantise.
fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> bool {
    let half = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    match ty {
        GgmlType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half(b);
            }
        }
        GgmlType::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
            }
        }
        GgmlType::Q4_0 => {
            for (o, b) in out.chunks_exact_mut(32).zip(bytes.chunks_exact(18)) {
                let d = half(&b[0..2]);
                let (lo, hi) = o.split_at_mut(16);
                for ((l, h), &q) in lo.iter_mut().zip(hi).zip(&b[2..18]) {
                    *l = (i32::from(q & 0x0F) - 8) as f32 * d;
                    *h = (i32::from(q >> 4) - 8) as f32 * d;
                }
            }
        }
        // One definition of these formats' values: the blocks' own, which the quantised
        // products read.
        GgmlType::Q4_1 | GgmlType::Q8_0 => match blocks(ty, 1, out.len(), bytes) {
            Ok(Some(q)) => q.dequantize_row(0, out),
            _ => return false,
        },
        _ => return false,
    }
    true
}

/// The `rows x cols` matrix of `Q8_0` or `Q4_1` blocks in `bytes`, kept in blocks with its
/// scales (and minimums) widened to `f32`; `Ok(None)` for another type. `Err` when `bytes` does
/// not hold exactly the matrix's blocks.
pub fn blocks(ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) -> Result<Option<QuantMatrix>, QuantError> {
    let half = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    let (format, size) = match ty {
        GgmlType::Q8_0 => (QuantFormat::Int8, 34),
        GgmlType::Q4_1 => (QuantFormat::Nibble, 20),
        _ => return Ok(None),
    };
    let count = bytes.len() / size;
    let mut scales = Vec::with_capacity(count);
    let mut mins = Vec::with_capacity(if format.has_min() { count } else { 0 });
    let mut quants = Vec::with_capacity(count * format.quant_bytes());
    for b in bytes.chunks_exact(size) {
        scales.push(half(&b[0..2]));
        let q = if format.has_min() {
            mins.push(half(&b[2..4]));
            &b[4..]
        } else {
            &b[2..]
        };
        quants.extend_from_slice(q);
    }
    // A byte range of the wrong number of blocks shows as parts of the wrong length (the
    // callers' ranges are whole blocks, computed from the shape).
    QuantMatrix::new(format, rows, cols, scales, mins, quants).map(Some)
}
