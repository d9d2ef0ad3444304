//! SGEMM benchmark: GFLOP/s of `mlc_kernels::gemm` on square and skinny shapes at several thread
//! counts, next to this machine's measured FP32 peak (an FMA-throughput loop per core).
//!
//! ```text
//! cargo run --release -p mlc-kernels --example gemm_bench -- [--threads 1,2] [--json] [--quick]
//!     [--variant avx512|avx2|portable] [--shapes sq|skinny|all|MxKxN,...] [--quant]
//! ```
//!
//! `bench/gemm.sh` runs it with `--json` beside numpy and prints the comparison table. Columns:
//! `rowmajor` (B given as `[K,N]`, packed per call as a BLAS would), `transposed` (B given as a
//! Linear weight `[N,K]`), `prepacked` (B packed once with `PackedB`).
//!
//! `--quant` times the skinny shapes (`M <= 16`) with the Linear weight in `f32` and block-quantised
//! (`gemm_quantized`, 8-bit and 4-bit blocks), in GFLOP/s and in GB/s of weight bytes read.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mlc_kernels::{
    GemmOpts, KernelVariant, MatMut, MatRef, PackedB, QuantFormat, QuantMatrix, ThreadPool, gemm, gemm_prepacked,
    gemm_quantized,
};

fn rand_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    huge_pages(&v, len);
    v.extend((0..len).map(|_| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }));
    v
}

/// Asks Linux for transparent huge pages on a buffer's capacity (what numpy does for its large
/// arrays; `PackedB` does it too), so that both sides of the comparison read memory through the
/// same kind of pages. `MLC_BENCH_NO_HUGEPAGES=1` turns it off.
#[allow(clippy::ptr_arg)] // the capacity, not the (empty) contents, is what matters
fn huge_pages(v: &Vec<f32>, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = len * 4;
        if bytes < 2 * HUGE || std::env::var_os("MLC_BENCH_NO_HUGEPAGES").is_some() {
            return;
        }
        let addr = v.as_ptr() as usize;
        let start = addr.div_ceil(HUGE) * HUGE;
        let end = (addr + bytes) / HUGE * HUGE;
        if end > start {
            // SAFETY: madvise(MADV_HUGEPAGE) on whole pages of the vector's own allocation only
            // changes how Linux backs the memory, never its contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (v, len);
}

/// Best time of `f` over repetitions that take at least `budget` in all (at least 3 runs after
/// one warm-up).
fn best_time(budget: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < budget && runs < 10_000) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

/// FP32 FMA throughput of one core: 12 independent accumulator chains of FMAs.
#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    /// # Safety
    ///
    /// The CPU must support avx512f.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma512(iters: usize) -> f32 {
        let mut acc = [_mm512_set1_ps(0.0); 12];
        let x = _mm512_set1_ps(0.999_999);
        let y = _mm512_set1_ps(1e-7);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        acc.iter().map(|a| _mm512_reduce_add_ps(*a)).sum()
    }

    /// # Safety
    ///
    /// The CPU must support avx2 and fma.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma256(iters: usize) -> f32 {
        let mut acc = [_mm256_set1_ps(0.0); 12];
        let x = _mm256_set1_ps(0.999_999);
        let y = _mm256_set1_ps(1e-7);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut out = [0.0f32; 8];
        for a in acc {
            let mut v = [0.0f32; 8];
            // SAFETY: `v` has 8 floats.
            unsafe { _mm256_storeu_ps(v.as_mut_ptr(), a) };
            for (o, x) in out.iter_mut().zip(v) {
                *o += x;
            }
        }
        out.iter().sum()
    }
}

/// Measured GFLOP/s of FMAs on `threads` cores at once (total), with 512- or 256-bit vectors.
fn measure_peak(threads: usize, wide: bool) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let ok = if wide {
            is_x86_feature_detected!("avx512f")
        } else {
            is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
        };
        if !ok {
            return None;
        }
        let lanes = if wide { 16.0 } else { 8.0 };
        // Many short runs, keeping the best: robust against other processes on the machine.
        let iters = 500_000usize;
        let mut best = 0.0f64;
        for _ in 0..60 {
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        // SAFETY: the feature was detected above.
                        let r = unsafe { if wide { peak::fma512(iters) } else { peak::fma256(iters) } };
                        black_box(r);
                    });
                }
            });
            let secs = start.elapsed().as_secs_f64();
            best = best.max(threads as f64 * iters as f64 * 12.0 * lanes * 2.0 / secs / 1e9);
        }
        Some(best)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, wide);
        None
    }
}

struct Args {
    threads: Vec<usize>,
    json: bool,
    quick: bool,
    variant: Option<KernelVariant>,
    shapes: String,
    quant: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        threads: vec![1, 2],
        json: false,
        quick: false,
        variant: None,
        shapes: "all".into(),
        quant: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => {
                args.threads = it
                    .next()
                    .expect("--threads N,M")
                    .split(',')
                    .map(|t| t.parse().expect("thread count"))
                    .collect()
            }
            "--json" => args.json = true,
            "--quick" => args.quick = true,
            "--quant" => args.quant = true,
            "--variant" => {
                args.variant = Some(match it.next().expect("--variant NAME").as_str() {
                    "avx512" => KernelVariant::Avx512,
                    "avx2" => KernelVariant::Avx2Fma,
                    "portable" => KernelVariant::Portable,
                    other => panic!("unknown variant {other}"),
                })
            }
            "--shapes" => args.shapes = it.next().expect("--shapes sq|skinny|all|MxKxN[,MxKxN...]"),
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let variant = args.variant.unwrap_or_else(KernelVariant::detect);
    let budget = Duration::from_millis(if args.quick { 150 } else { 400 });

    let peak512 = measure_peak(1, true);
    let peak256 = measure_peak(1, false);
    let peak512_2 = measure_peak(2, true);
    if args.json {
        println!(
            "{{\"kind\":\"meta\",\"variant\":\"{}\",\"peak512_1\":{},\"peak256_1\":{},\"peak512_2\":{}}}",
            variant.name(),
            peak512.unwrap_or(0.0),
            peak256.unwrap_or(0.0),
            peak512_2.unwrap_or(0.0)
        );
    } else {
        println!("kernel variant: {}", variant.name());
        println!(
            "measured FP32 FMA peak: {:.1} GFLOP/s/core (512-bit), {:.1} (256-bit), {:.1} on 2 cores (512-bit)",
            peak512.unwrap_or(0.0),
            peak256.unwrap_or(0.0),
            peak512_2.unwrap_or(0.0)
        );
        println!(
            "{:<22} {:>3} {:>10} {:>10} {:>10}",
            "shape (MxKxN)", "thr", "rowmajor", "transposed", "prepacked"
        );
    }

    let mut shapes: Vec<(usize, usize, usize)> = Vec::new();
    if args.shapes == "sq" || args.shapes == "all" {
        for s in [64, 128, 256, 512, 1024, 2048] {
            shapes.push((s, s, s));
        }
    }
    if args.shapes == "skinny" || args.shapes == "all" {
        for m in [1, 4, 16] {
            for kn in [256, 1024, 4096] {
                shapes.push((m, kn, kn));
            }
        }
    }
    if args.shapes.contains('x') {
        for s in args.shapes.split(',') {
            let d: Vec<usize> = s.split('x').map(|x| x.parse().expect("MxKxN")).collect();
            shapes.push((d[0], d[1], d[2]));
        }
    }

    if args.quant {
        quant_table(&args, &shapes, variant, budget);
        return;
    }
    for &threads in &args.threads {
        let pool = ThreadPool::new(threads);
        for &(m, k, n) in &shapes {
            let a = rand_vec(m * k, 1);
            let b = rand_vec(k * n, 2);
            let w = rand_vec(n * k, 3);
            let mut c = vec![0.0f32; m * n];
            let packed = PackedB::new(&b, k, n, false);
            let opts = GemmOpts {
                variant: Some(variant),
                ..GemmOpts::default()
            };
            let mut run = |which: u8| {
                gflops(budget, (m, k, n), &a, &mut c, |av, cm| match which {
                    0 => gemm(&pool, av, MatRef::new(&b, k, n, n), cm, &opts),
                    1 => gemm(&pool, av, MatRef::transposed(&w, k, n, k), cm, &opts),
                    _ => gemm_prepacked(&pool, av, &packed, cm, &opts),
                })
            };
            let (g_row, g_t, g_p) = (run(0), run(1), run(2));
            if std::env::var_os("MLC_BENCH_DEBUG").is_some() {
                let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
                eprintln!(
                    "{}",
                    s.lines()
                        .filter(|l| l.contains("AnonHuge"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            if args.json {
                println!(
                    "{{\"kind\":\"mlc\",\"m\":{m},\"k\":{k},\"n\":{n},\"threads\":{threads},\"rowmajor\":{g_row:.2},\"transposed\":{g_t:.2},\"prepacked\":{g_p:.2}}}"
                );
            } else {
                println!(
                    "{:<22} {:>3} {:>10.1} {:>10.1} {:>10.1}",
                    format!("{m}x{k}x{n}"),
                    threads,
                    g_row,
                    g_t,
                    g_p
                );
            }
        }
    }
}

/// GFLOP/s of `product(A, C)` for an `m x k` row-major `A` and `m x n` row-major `C` (best
/// time within the budget).
fn gflops(
    budget: Duration,
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    c: &mut [f32],
    mut product: impl FnMut(MatRef<'_>, MatMut<'_>),
) -> f64 {
    let t = best_time(budget, || {
        product(MatRef::new(a, m, k, k), MatMut::new(c, m, n, n));
        black_box(&mut *c);
    });
    2.0 * (m * n * k) as f64 / t / 1e9
}

/// A random block-quantised `[n, k]` weight (`k` a multiple of 32).
fn random_quant(format: QuantFormat, n: usize, k: usize) -> QuantMatrix {
    let blocks = n * k / 32;
    let scales = rand_vec(blocks, 4).iter().map(|x| x * 0.1).collect();
    let mins = if format.has_min() {
        rand_vec(blocks, 5)
    } else {
        Vec::new()
    };
    // Filled the way `GgufFile::quantized` fills its blocks (reserved, then extended).
    let qb = blocks * format.quant_bytes();
    let mut quants: Vec<u8> = Vec::with_capacity(qb);
    quants.extend(rand_vec(qb, 6).iter().map(|x| ((x + 0.5) * 255.0) as u8));
    QuantMatrix::new(format, n, k, scales, mins, quants).expect("consistent parts")
}

/// `--quant`: skinny products with an `f32` Linear weight against 8-bit and 4-bit blocks.
fn quant_table(args: &Args, shapes: &[(usize, usize, usize)], variant: KernelVariant, budget: Duration) {
    if !args.json {
        println!(
            "{:<22} {:>3} {:>16} {:>16} {:>16}   (GFLOP/s, weight GB/s)",
            "shape (MxKxN)", "thr", "f32 W^T", "8-bit blocks", "4-bit blocks"
        );
    }
    for &threads in &args.threads {
        let pool = ThreadPool::new(threads);
        for &(m, k, n) in shapes.iter().filter(|s| s.0 <= 16 && s.1 % 32 == 0) {
            let a = rand_vec(m * k, 1);
            let w = rand_vec(n * k, 3);
            let q8 = random_quant(QuantFormat::Int8, n, k);
            let q4 = random_quant(QuantFormat::Nibble, n, k);
            let mut c = vec![0.0f32; m * n];
            let opts = GemmOpts {
                variant: Some(variant),
                ..GemmOpts::default()
            };
            let mut run = |which: u8| {
                let g = gflops(budget, (m, k, n), &a, &mut c, |av, cm| match which {
                    0 => gemm(&pool, av, MatRef::transposed(&w, k, n, k), cm, &opts),
                    1 => gemm_quantized(&pool, av, &q8, cm, &opts),
                    _ => gemm_quantized(&pool, av, &q4, cm, &opts),
                });
                let bytes = match which {
                    0 => n * k * 4,
                    1 => q8.byte_size(),
                    _ => q4.byte_size(),
                };
                // GB/s of weights: bytes per flop times flops per second.
                (g, g * bytes as f64 / (2.0 * (m * n * k) as f64))
            };
            let (f, q8r, q4r) = (run(0), run(1), run(2));
            if args.json {
                println!(
                    "{{\"kind\":\"quant\",\"m\":{m},\"k\":{k},\"n\":{n},\"threads\":{threads},\"f32\":[{:.2},{:.2}],\"int8\":[{:.2},{:.2}],\"nibble\":[{:.2},{:.2}]}}",
                    f.0, f.1, q8r.0, q8r.1, q4r.0, q4r.1
                );
            } else {
                let cell = |(g, b): (f64, f64)| format!("{g:7.1} {b:7.1}");
                println!(
                    "{:<22} {:>3} {:>16} {:>16} {:>16}",
                    format!("{m}x{k}x{n}"),
                    threads,
                    cell(f),
                    cell(q8r),
                    cell(q4r)
                );
            }
        }
    }
}
