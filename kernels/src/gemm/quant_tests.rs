//! Tests of the block-quantised products: the formats' values by hand, and every kernel variant
//! this CPU supports against an f64 product of the dequantised matrix.

use super::tests::{act_ref, pools, rand_vec, variants};
use super::*;

/// A random `rows x cols` matrix: scales in [-0.1, 0.1), minimums in [-1, 1), random bytes.
fn random_matrix(format: QuantFormat, rows: usize, cols: usize, seed: u64) -> QuantMatrix {
    let blocks = rows * cols / QBLOCK;
    let scales = rand_vec(blocks, seed).iter().map(|x| x * 0.1).collect();
    let mins = if format.has_min() {
        rand_vec(blocks, seed + 1)
    } else {
        Vec::new()
    };
    let quants = rand_vec(blocks * format.quant_bytes(), seed + 2)
        .iter()
        .map(|x| ((x + 1.0) * 128.0) as u8)
        .collect();
    QuantMatrix::new(format, rows, cols, scales, mins, quants).expect("consistent parts")
}

#[test]
fn dequantized_values_follow_the_formats() {
    // Int8: q * d, q signed.
    let mut q = vec![0u8; 32];
    q[..5].copy_from_slice(&[0x80, 0xFF, 0x00, 0x01, 0x7F]); // -128, -1, 0, 1, 127
    let w = QuantMatrix::new(QuantFormat::Int8, 1, 32, vec![0.5], vec![], q).unwrap();
    let mut row = vec![f32::NAN; 32];
    w.dequantize_row(0, &mut row);
    assert_eq!(&row[..5], &[-64.0, -0.5, 0.0, 0.5, 63.5]);
    assert!(row[5..].iter().all(|&v| v == 0.0));
    // Nibble: byte t holds value t (low nibble) and value t + 16 (high nibble); q * d + m.
    let mut q = vec![0u8; 16];
    q[0] = 0x21;
    q[15] = 0xF0;
    let w = QuantMatrix::new(QuantFormat::Nibble, 1, 32, vec![0.25], vec![-1.0], q).unwrap();
    let mut row = vec![f32::NAN; 32];
    w.dequantize_row(0, &mut row);
    assert_eq!((row[0], row[16]), (-0.75, -0.5));
    assert_eq!((row[15], row[31]), (-1.0, 2.75));
    assert!(row[1..15].iter().chain(&row[17..31]).all(|&v| v == -1.0));
    assert_eq!(w.byte_size(), 4 + 4 + 16);
}

#[test]
fn inconsistent_parts_are_refused() {
    let err = QuantMatrix::new(QuantFormat::Int8, 1, 33, vec![0.0; 2], vec![], vec![0; 66]).unwrap_err();
    assert_eq!(err, QuantError::RaggedRow { cols: 33 });
    let err = QuantMatrix::new(QuantFormat::Nibble, 2, 64, vec![0.0; 4], vec![0.0; 3], vec![0; 64]).unwrap_err();
    assert_eq!(err.to_string(), "mins: 3 values, a 2x64 Nibble matrix needs 4");
    let err = QuantMatrix::new(QuantFormat::Int8, 2, 64, vec![0.0; 4], vec![1.0; 4], vec![0; 128]).unwrap_err();
    assert!(matches!(
        err,
        QuantError::Length {
            part: "mins",
            expected: 0,
            found: 4,
            ..
        }
    ));
    let err = QuantMatrix::new(QuantFormat::Int8, 2, 64, vec![0.0; 4], vec![], vec![0; 127]).unwrap_err();
    assert!(matches!(
        err,
        QuantError::Length {
            part: "quants",
            expected: 128,
            found: 127,
            ..
        }
    ));
}

#[test]
fn selected_rows_are_whole_rows() {
    for format in [QuantFormat::Int8, QuantFormat::Nibble] {
        let w = random_matrix(format, 3, 64, 7);
        let all = w.dequantize();
        let picked = w.select_rows(&[2, 0, 2]).dequantize();
        assert_eq!(&picked[..64], &all[128..]);
        assert_eq!(&picked[64..128], &all[..64]);
        assert_eq!(&picked[128..], &all[128..]);
    }
}

/// `gemm_quantized` against the f64 product with the dequantised weights, epilogue included.
#[allow(clippy::too_many_arguments)]
fn check(
    pool: &ThreadPool,
    variant: KernelVariant,
    format: QuantFormat,
    (m, n, k): (usize, usize, usize),
    a_col_stride: usize,
    alpha: f32,
    accumulate: bool,
    epilogue: bool,
    seed: u64,
) {
    let w = random_matrix(format, n, k, seed);
    let wf = w.dequantize();
    let lda = k * a_col_stride + 1;
    let a = rand_vec(m * lda, seed + 3);
    let ldc = n + 2;
    let c0 = if accumulate {
        rand_vec(m * ldc, seed + 4)
    } else {
        vec![f32::NAN; m * ldc]
    };
    let bias = rand_vec(n, seed + 5);
    let res = rand_vec(m * n, seed + 6);
    let opts = GemmOpts {
        alpha,
        accumulate,
        epilogue: if epilogue {
            Epilogue {
                scale: Some(0.75),
                bias: Some(&bias),
                activation: Activation::Silu,
                residual: Some(Residual::new(&res, n)),
            }
        } else {
            Epilogue::default()
        },
        variant: Some(variant),
    };
    let mut c = c0.clone();
    let av = MatRef::from_strides(&a, m, k, lda, a_col_stride);
    gemm_quantized(pool, av, &w, MatMut::new(&mut c, m, n, ldc), &opts);
    for i in 0..m {
        for j in 0..n {
            let (mut t, mut mag) = (0.0f64, 0.0f64);
            for q in 0..k {
                let p = f64::from(a[i * lda + q * a_col_stride]) * f64::from(wf[j * k + q]);
                t += p;
                mag += p.abs();
            }
            t *= f64::from(alpha);
            mag *= f64::from(alpha).abs();
            if accumulate {
                t += f64::from(c0[i * ldc + j]);
                mag += f64::from(c0[i * ldc + j]).abs();
            }
            if epilogue {
                t = act_ref(Activation::Silu, t * 0.75 + f64::from(bias[j])) + f64::from(res[i * n + j]);
                mag = mag * 0.75 + 2.0;
            }
            let got = f64::from(c[i * ldc + j]);
            let tol = 1e-5 * (1.0 + mag) + 1e-6 * t.abs();
            assert!(
                (got - t).abs() <= tol,
                "{} {format:?} m={m} n={n} k={k}: C[{i},{j}] = {got}, want {t} (tol {tol:e})",
                variant.name()
            );
        }
        for j in n..ldc.min(m * ldc - i * ldc) {
            assert!(
                c[i * ldc + j].to_bits() == c0[i * ldc + j].to_bits(),
                "padding C[{i},{j}] was written"
            );
        }
    }
}

#[test]
fn products_match_the_dequantised_product() {
    let mut seed = 0;
    for pool in &pools() {
        for v in variants() {
            for format in [QuantFormat::Int8, QuantFormat::Nibble] {
                for m in [1, 2, 3, 4, 5, 8, 9, 16, 17] {
                    for (n, k) in [(1, 32), (15, 96), (37, 64), (40, 0)] {
                        seed += 10;
                        check(pool, v, format, (m, n, k), 1, 1.0, false, false, seed);
                    }
                }
                // Strided A, alpha, accumulation and the whole epilogue.
                for m in [1, 6] {
                    seed += 10;
                    check(pool, v, format, (m, 33, 128), 2, 0.5, true, true, seed);
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "gemm_quantized shapes disagree")]
fn mismatched_shapes_panic() {
    let w = random_matrix(QuantFormat::Int8, 4, 32, 1);
    let (a, mut c) = (vec![0.0; 64], vec![0.0; 8]);
    gemm_quantized(
        &ThreadPool::new(1),
        MatRef::new(&a, 1, 64, 64),
        &w,
        MatMut::new(&mut c, 1, 4, 4),
        &GemmOpts::default(),
    );
}

#[test]
fn blocks_pay_off_for_few_short_rows() {
    // At most 4 rows always; up to the kernel's rows (4 or 8) when they fit in 48 KiB; never
    // 9 or more (each block would be decoded twice).
    assert!(quantized_pays_off(1, 1 << 20) && quantized_pays_off(4, 4096));
    assert!(!quantized_pays_off(8, 4096) && !quantized_pays_off(9, 64) && !quantized_pays_off(16, 576));
    let eight_short = quantized_pays_off(8, 576);
    let cap8 = KernelVariant::detect() == KernelVariant::Avx512;
    assert_eq!(eight_short, cap8);
}
