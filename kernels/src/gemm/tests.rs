//! GEMM tests against a naive triple loop in f64, for every kernel variant this CPU supports.

use super::*;
use crate::threadpool::ThreadPool;

/// Deterministic values in [-1, 1).
pub(super) fn rand_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub(super) fn variants() -> Vec<KernelVariant> {
    [KernelVariant::Avx512, KernelVariant::Avx2Fma, KernelVariant::Portable]
        .into_iter()
        .filter(|v| v.is_supported())
        .collect()
}

/// A strided matrix: `(i, j)` at `i * rs + j * cs`.
#[derive(Clone)]
struct Mat {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    /// Row-major with `pad` extra elements per row.
    fn row_major(rows: usize, cols: usize, pad: usize, seed: u64) -> Mat {
        let rs = cols + pad;
        Mat {
            data: rand_vec(rows * rs + 3, seed),
            rows,
            cols,
            rs,
            cs: 1,
        }
    }

    /// Stored transposed (`[cols, rows]` row-major, `pad` extra per stored row).
    fn transposed(rows: usize, cols: usize, pad: usize, seed: u64) -> Mat {
        let ld = rows + pad;
        Mat {
            data: rand_vec(cols * ld + 3, seed),
            rows,
            cols,
            rs: 1,
            cs: ld,
        }
    }

    /// Both strides above 1.
    fn strided(rows: usize, cols: usize, seed: u64) -> Mat {
        let cs = 2;
        let rs = cols * cs + 1;
        Mat {
            data: rand_vec(rows * rs + 3, seed),
            rows,
            cols,
            rs,
            cs,
        }
    }

    fn get(&self, i: usize, j: usize) -> f64 {
        f64::from(self.data[i * self.rs + j * self.cs])
    }

    fn view(&self) -> MatRef<'_> {
        MatRef::from_strides(&self.data, self.rows, self.cols, self.rs, self.cs)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum BKind {
    RowMajor,
    Transposed,
    Strided,
    Prepacked,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    m: usize,
    n: usize,
    k: usize,
    b: BKind,
    a_transposed: bool,
    alpha: f32,
    accumulate: bool,
    scale: Option<f32>,
    bias: bool,
    act: Activation,
    residual: bool,
    ldc_pad: usize,
}

impl Case {
    fn plain(m: usize, n: usize, k: usize, b: BKind) -> Case {
        Case {
            m,
            n,
            k,
            b,
            a_transposed: false,
            alpha: 1.0,
            accumulate: false,
            scale: None,
            bias: false,
            act: Activation::None,
            residual: false,
            ldc_pad: 0,
        }
    }
}

pub(super) fn act_ref(act: Activation, x: f64) -> f64 {
    // The f32 formulas are tested against f64 in `epilogue`; here the reference applies the same
    // activation in f32 to the f64 result.
    f64::from(act.apply(x as f32))
}

fn check_case(pool: &ThreadPool, variant: KernelVariant, case: Case, seed: u64) {
    check_case_tuned(pool, variant, case, seed, None);
}

/// As `check_case`; with `tune`, the blocking parameters are changed first (to reach paths that
/// the default thresholds keep for large matrices) and the internal entry point is used.
fn check_case_tuned(
    pool: &ThreadPool,
    variant: KernelVariant,
    case: Case,
    seed: u64,
    tune: Option<&dyn Fn(&mut driver::Blocking)>,
) {
    let Case { m, n, k, .. } = case;
    let a = if case.a_transposed {
        Mat::transposed(m, k, 2, seed)
    } else {
        Mat::row_major(m, k, 1, seed)
    };
    let b = match case.b {
        BKind::RowMajor | BKind::Prepacked => Mat::row_major(k, n, 3, seed + 1),
        BKind::Transposed => Mat::transposed(k, n, 1, seed + 1),
        BKind::Strided => Mat::strided(k, n, seed + 1),
    };
    let ldc = n + case.ldc_pad;
    let c_len = if m == 0 { 0 } else { (m - 1) * ldc + n };
    let c0 = if case.accumulate {
        rand_vec(c_len, seed + 2)
    } else {
        vec![f32::NAN; c_len]
    };
    let bias = rand_vec(n, seed + 3);
    let res_ld = n + 5;
    let res = rand_vec(m * res_ld, seed + 4);
    let mut c = c0.clone();
    let epilogue = Epilogue {
        scale: case.scale,
        bias: case.bias.then_some(&bias[..]),
        activation: case.act,
        residual: case.residual.then(|| Residual::new(&res, res_ld)),
    };
    let opts = GemmOpts {
        alpha: case.alpha,
        accumulate: case.accumulate,
        epilogue,
        variant: Some(variant),
    };
    {
        let cm = MatMut::new(&mut c, m, n, ldc);
        let packed = (case.b == BKind::Prepacked).then(|| PackedB::from_mat(b.view()));
        match (tune, &packed) {
            (None, Some(packed)) => gemm_prepacked(pool, a.view(), packed, cm, &opts),
            (None, None) => gemm(pool, a.view(), b.view(), cm, &opts),
            (Some(tune), packed) => {
                let mut ctx = driver::Ctx::new(pool, Some(variant));
                tune(&mut ctx.bl);
                let bv = b.view();
                let raw = match packed {
                    Some(packed) => packed.raw(),
                    None => driver::RawB::Strided {
                        ptr: bv.data().as_ptr(),
                        rs: bv.row_stride(),
                        cs: bv.col_stride(),
                    },
                };
                // SAFETY: `raw` describes the `k x n` view `b` (or its packed copy), alive for
                // the call.
                unsafe { run_views(&ctx, a.view(), raw, cm, &opts) };
            }
        }
    }
    for i in 0..m {
        for j in 0..n {
            let mut dot = 0.0f64;
            let mut mag = 0.0f64;
            for q in 0..k {
                dot += a.get(i, q) * b.get(q, j);
                mag += (a.get(i, q) * b.get(q, j)).abs();
            }
            let mut t = f64::from(case.alpha) * dot;
            mag *= f64::from(case.alpha).abs();
            if case.accumulate {
                t += f64::from(c0[i * ldc + j]);
                mag += f64::from(c0[i * ldc + j]).abs();
            }
            if let Some(s) = case.scale {
                t *= f64::from(s);
                mag *= f64::from(s).abs();
            }
            if case.bias {
                t += f64::from(bias[j]);
                mag += 1.0;
            }
            t = act_ref(case.act, t);
            if case.residual {
                t += f64::from(res[i * res_ld + j]);
                mag += 1.0;
            }
            let got = f64::from(c[i * ldc + j]);
            let tol = 1e-5 * (1.0 + mag) + 1e-6 * t.abs();
            assert!(
                (got - t).abs() <= tol,
                "{} {case:?}: C[{i},{j}] = {got}, want {t} (tol {tol:e})",
                variant.name()
            );
        }
        // Padding between rows is untouched.
        for j in n..ldc.min(c_len.saturating_sub(i * ldc)) {
            assert_eq!(
                c[i * ldc + j].to_bits(),
                c0[i * ldc + j].to_bits(),
                "padding C[{i},{j}] was written"
            );
        }
    }
}

pub(super) fn pools() -> [ThreadPool; 2] {
    [ThreadPool::new(1), ThreadPool::new(2)]
}

#[test]
fn odd_shapes_all_layouts() {
    let ms = [1, 3, 7, 16, 17, 63, 65];
    let ns = [1, 3, 17, 31, 33, 65, 129];
    let ks = [1, 7, 63, 129];
    let mut seed = 0;
    for pool in &pools() {
        for v in variants() {
            for &m in &ms {
                for &n in &ns {
                    for &k in &ks {
                        for b in [BKind::RowMajor, BKind::Transposed, BKind::Strided, BKind::Prepacked] {
                            seed += 1;
                            // Keep the debug run short: every layout on a subset, row-major on all.
                            if b != BKind::RowMajor && (m + n + k) % 3 != 0 {
                                continue;
                            }
                            check_case(pool, v, Case::plain(m, n, k, b), seed);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_skinny_m() {
    for pool in &pools() {
        for v in variants() {
            for m in 1..=16 {
                for (n, k) in [(1, 5), (40, 33), (200, 300), (129, 17)] {
                    for b in [BKind::RowMajor, BKind::Transposed, BKind::Prepacked, BKind::Strided] {
                        check_case(pool, v, Case::plain(m, n, k, b), (m * 1000 + n + k) as u64);
                    }
                }
            }
        }
    }
}

#[test]
fn blocking_boundaries() {
    // K past KC (several K blocks, accumulation between them), M past MC, N past NC, and a long
    // skinny K past the streaming chunk.
    for pool in &pools() {
        for v in variants() {
            let bl = driver::blocking(v.isa());
            let (m, n, k) = (bl.mc + 5, bl.nc + 40, bl.kc * 2 + 3);
            check_case(pool, v, Case::plain(m, n, k, BKind::RowMajor), 7);
            check_case(pool, v, Case::plain(m.min(70), n, k, BKind::Prepacked), 8);
            check_case(pool, v, Case::plain(5, 300, bl.stream_kc * 2 + 9, BKind::RowMajor), 9);
            check_case(pool, v, Case::plain(3, 300, 1000, BKind::Transposed), 10);
        }
    }
}

#[test]
fn small_row_major_b_read_in_place() {
    // The blocked path reads a small row-major B without packing when N is a multiple of the
    // tile width.
    for pool in &pools() {
        for v in variants() {
            for (m, n, k) in [(17, 64, 7), (40, 64, 50), (65, 96, 33), (20, 32, 1)] {
                check_case(pool, v, Case::plain(m, n, k, BKind::RowMajor), 70);
                let mut case = Case::plain(m, n, k, BKind::RowMajor);
                case.accumulate = true;
                case.bias = true;
                case.act = Activation::GeluErf;
                check_case(pool, v, case, 71);
            }
        }
    }
}

#[test]
fn skinny_large_b_paths() {
    // With the "large B" threshold at 0, skinny calls take the streaming paths: the one-row
    // kernel a few rows at a time, direct tiles a few rows at a time, and copying B into panels
    // `stream_kc` rows at a time.
    let tune = |bl: &mut driver::Blocking| {
        bl.stream_bytes = 0;
        bl.row_kc_big = 3;
        bl.direct_kc = 5;
        bl.stream_kc = 7;
    };
    for pool in &pools() {
        for v in variants() {
            for m in [1, 2, 4, 5, 9, 16] {
                for (n, k) in [(200, 45), (129, 17), (31, 8)] {
                    let mut case = Case::plain(m, n, k, BKind::RowMajor);
                    check_case_tuned(pool, v, case, 80, Some(&tune));
                    case.accumulate = true;
                    case.residual = true;
                    check_case_tuned(pool, v, case, 81, Some(&tune));
                }
            }
        }
    }
}

#[test]
fn tiny_blocks() {
    // Small KC, MC and NC: many blocks in every direction, in every layout.
    let tune = |bl: &mut driver::Blocking| {
        bl.kc = 16;
        bl.mc = bl.mc.min(24);
        bl.nc = 64;
        bl.direct_bytes = 0;
        bl.direct_a_bytes = 0;
    };
    for pool in &pools() {
        for v in variants() {
            for b in [BKind::RowMajor, BKind::Transposed, BKind::Strided, BKind::Prepacked] {
                let mut case = Case::plain(70, 150, 61, b);
                check_case_tuned(pool, v, case, 90, Some(&tune));
                case.accumulate = true;
                case.act = Activation::Tanh;
                check_case_tuned(pool, v, case, 91, Some(&tune));
            }
        }
    }
}

#[test]
fn strides_transposed_a_and_accumulate() {
    for pool in &pools() {
        for v in variants() {
            for (m, n, k) in [(1, 33, 20), (9, 70, 31), (40, 50, 60), (70, 17, 129)] {
                for b in [BKind::RowMajor, BKind::Transposed, BKind::Prepacked, BKind::Strided] {
                    let mut case = Case::plain(m, n, k, b);
                    case.a_transposed = true;
                    case.ldc_pad = 3;
                    check_case(pool, v, case, 11);
                    case.a_transposed = false;
                    case.accumulate = true;
                    case.alpha = -0.75;
                    check_case(pool, v, case, 12);
                }
            }
        }
    }
}

#[test]
fn each_epilogue() {
    let acts = [
        Activation::None,
        Activation::Relu,
        Activation::GeluTanh,
        Activation::GeluErf,
        Activation::Silu,
        Activation::Tanh,
        Activation::Sigmoid,
    ];
    for pool in &pools() {
        for v in variants() {
            for (m, n, k) in [(1, 45, 37), (4, 64, 64), (30, 70, 50)] {
                for b in [BKind::RowMajor, BKind::Transposed, BKind::Prepacked] {
                    for act in acts {
                        let mut case = Case::plain(m, n, k, b);
                        case.act = act;
                        check_case(pool, v, case, 20);
                        case.bias = true;
                        check_case(pool, v, case, 21);
                        case.scale = Some(0.5);
                        case.residual = true;
                        case.accumulate = true;
                        case.ldc_pad = 2;
                        check_case(pool, v, case, 22);
                    }
                    let mut case = Case::plain(m, n, k, b);
                    case.residual = true;
                    check_case(pool, v, case, 23);
                    case.residual = false;
                    case.scale = Some(-2.0);
                    check_case(pool, v, case, 24);
                }
            }
        }
    }
}

#[test]
fn empty_dimensions() {
    let pool = ThreadPool::new(2);
    for v in variants() {
        for (m, n, k) in [(0, 5, 5), (5, 0, 5), (5, 5, 0), (20, 40, 0)] {
            let mut case = Case::plain(m, n, k, BKind::RowMajor);
            check_case(&pool, v, case, 30);
            case.accumulate = true;
            case.bias = true;
            case.act = Activation::Relu;
            check_case(&pool, v, case, 31);
        }
    }
}

#[test]
fn packed_b_round_trips() {
    let (k, n) = (19, 70);
    let b = rand_vec(k * n, 40);
    let p = PackedB::new(&b, k, n, false);
    let pt = PackedB::new(&b, k, n, true);
    for i in 0..k {
        for j in 0..n {
            assert_eq!(p.get(i, j), b[i * n + j]);
            assert_eq!(pt.get(i, j), b[j * k + i]);
        }
    }
}

/// Reference for one batch item of `batched`.
#[allow(clippy::too_many_arguments)]
fn batched_case(
    pool: &ThreadPool,
    v: KernelVariant,
    batch: &[usize],
    m: usize,
    n: usize,
    k: usize,
    bcast: u8,
    seed: u64,
) {
    let count: usize = batch.iter().product();
    // Contiguous strides for [batch..., r, c], with a zero stride on the broadcast operand's
    // first batch dimension (bcast 1: A, 2: B, 3: B on every dimension).
    let strides = |r: usize, c: usize, zero_first: bool, zero_all: bool| -> Vec<usize> {
        let mut s = vec![0; batch.len()];
        let mut acc = r * c;
        for d in (0..batch.len()).rev() {
            s[d] = if zero_all || (zero_first && d == 0) { 0 } else { acc };
            acc *= batch[d];
        }
        s
    };
    let sa = strides(m, k, bcast == 1, false);
    let sb = strides(k, n, bcast == 2, bcast == 3);
    let sc = strides(m, n, false, false);
    let sr = strides(m, n, true, false);
    let a = rand_vec(m * k * count, seed);
    let b = rand_vec(k * n * count, seed + 1);
    let res = rand_vec(m * n * count, seed + 2);
    let bias = rand_vec(n, seed + 3);
    let mut c = vec![f32::NAN; m * n * count];
    let opts = GemmOpts {
        epilogue: Epilogue {
            bias: Some(&bias),
            activation: Activation::Silu,
            residual: Some(Residual {
                data: &res,
                ld: n,
                batch_strides: &sr,
            }),
            ..Epilogue::default()
        },
        variant: Some(v),
        ..GemmOpts::default()
    };
    gemm_batched(
        pool,
        batch,
        BatchMatRef::contiguous(&a, m, k, &sa),
        BatchMatRef::contiguous(&b, k, n, &sb),
        BatchMatMut {
            data: &mut c,
            rows: m,
            cols: n,
            ld: n,
            batch_strides: &sc,
        },
        &opts,
    );
    for index in 0..count {
        let (mut oa, mut ob, mut oc, mut or) = (0, 0, 0, 0);
        let mut rem = index;
        for d in (0..batch.len()).rev() {
            let i = rem % batch[d];
            rem /= batch[d];
            oa += i * sa[d];
            ob += i * sb[d];
            oc += i * sc[d];
            or += i * sr[d];
        }
        for i in 0..m {
            for j in 0..n {
                let mut t = 0.0f64;
                let mut mag = 0.0f64;
                for q in 0..k {
                    let x = f64::from(a[oa + i * k + q]) * f64::from(b[ob + q * n + j]);
                    t += x;
                    mag += x.abs();
                }
                let t = act_ref(Activation::Silu, t + f64::from(bias[j])) + f64::from(res[or + i * n + j]);
                let got = f64::from(c[oc + i * n + j]);
                assert!(
                    (got - t).abs() <= 1e-5 * (2.0 + mag) + 1e-6 * t.abs(),
                    "{} batch {batch:?} item {index} m{m} n{n} k{k} bcast{bcast}: C[{i},{j}] = {got}, want {t}",
                    v.name()
                );
            }
        }
    }
}

#[test]
fn batched_with_broadcast() {
    for pool in &pools() {
        for v in variants() {
            for bcast in 0..4 {
                batched_case(pool, v, &[2, 3], 5, 19, 7, bcast, 50);
                batched_case(pool, v, &[3], 33, 40, 21, bcast, 51);
                batched_case(pool, v, &[16], 4, 8, 8, bcast, 52);
                batched_case(pool, v, &[2, 1, 2], 1, 33, 65, bcast, 53);
            }
            batched_case(pool, v, &[], 20, 20, 20, 0, 54);
            batched_case(pool, v, &[0, 3], 4, 4, 4, 0, 55);
            batched_case(pool, v, &[3, 2], 4, 6, 0, 0, 56);
        }
    }
}

#[test]
#[should_panic(expected = "output batches overlap")]
fn overlapping_batches_are_rejected() {
    let a = vec![0.0; 8];
    let b = vec![0.0; 8];
    let mut c = vec![0.0; 8];
    gemm_batched(
        &ThreadPool::new(1),
        &[2],
        BatchMatRef::contiguous(&a, 2, 2, &[4]),
        BatchMatRef::contiguous(&b, 2, 2, &[4]),
        BatchMatMut {
            data: &mut c,
            rows: 2,
            cols: 2,
            ld: 2,
            batch_strides: &[2],
        },
        &GemmOpts::default(),
    );
}

#[test]
#[should_panic(expected = "gemm shapes disagree")]
fn mismatched_shapes_panic() {
    let a = vec![0.0; 6];
    let b = vec![0.0; 6];
    let mut c = vec![0.0; 4];
    gemm(
        &ThreadPool::new(1),
        MatRef::new(&a, 2, 3, 3),
        MatRef::new(&b, 2, 3, 3),
        MatMut::new(&mut c, 2, 2, 2),
        &GemmOpts::default(),
    );
}

#[test]
fn global_pool_and_detection() {
    let v = KernelVariant::detect();
    assert!(v.is_supported());
    let a = rand_vec(64 * 64, 60);
    let b = rand_vec(64 * 64, 61);
    let mut c = vec![0.0; 64 * 64];
    gemm(
        ThreadPool::global(),
        MatRef::new(&a, 64, 64, 64),
        MatRef::new(&b, 64, 64, 64),
        MatMut::new(&mut c, 64, 64, 64),
        &GemmOpts::default(),
    );
    let want: f32 = (0..64).map(|q| a[q] * b[q * 64]).sum();
    assert!((c[0] - want).abs() < 1e-4);
}
