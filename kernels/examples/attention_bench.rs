//! Attention benchmark: the blocked (flash-style) `mlc_kernels::attention::attention` beside two
//! versions that materialise the `[T, T]` score matrix of each head: plain loops (`naive`) and the
//! mlc GEMM for both products with a row softmax in between (`gemm+softmax`, what the DSL's
//! composed `std.attention.attention` amounts to).
//!
//! ```text
//! cargo run --release -p mlc-kernels --example attention_bench -- [--threads 1,2] [--t 128,512,2048]
//!     [--variant avx2|portable] [--no-naive] [--full]
//! ```
//!
//! Shapes: B = 1, H = 8, dh = dv = 64, causal unless `--full`. GFLOP/s count the useful work
//! only, `4 * dh` per visible (query, key) pair (T (T + 1) / 2 pairs per head when causal), for
//! every column, although the materialising versions also compute the masked half.

use std::hint::black_box;
use std::time::{Duration, Instant};

use mlc_kernels::attention::{AttentionOpts, AttentionVariant, Tensor4Mut, Tensor4Ref, attention};
use mlc_kernels::{GemmOpts, MatMut, MatRef, ThreadPool, gemm};

const B: usize = 1;
const H: usize = 8;
const DH: usize = 64;

fn rand_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Best time of `f`, in seconds, over runs that take at least `budget` in all (at least `min_runs`
/// after one warm-up; no warm-up when `min_runs` is 1).
fn best_time(budget: Duration, min_runs: usize, mut f: impl FnMut()) -> f64 {
    if min_runs > 1 {
        f();
    }
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < min_runs || (start.elapsed() < budget && runs < 10_000) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        runs += 1;
    }
    best
}

/// Softmax of one score row over its first `visible` entries in place; the rest become 0.
fn softmax_row(row: &mut [f32], visible: usize) {
    let (vis, hidden) = row.split_at_mut(visible);
    hidden.fill(0.0);
    let m = vis.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    if m == f32::NEG_INFINITY {
        vis.fill(0.0);
        return;
    }
    let mut sum = 0.0;
    for x in vis.iter_mut() {
        *x = (*x - m).exp();
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in vis.iter_mut() {
        *x *= inv;
    }
}

/// Materialising attention with plain loops, heads split over the pool.
fn naive(pool: &ThreadPool, t: usize, causal: bool, [q, k, v]: [&[f32]; 3], out: &mut [f32]) {
    let scale = AttentionOpts::default_scale(DH);
    let heads = B * H;
    let out_ptr = out.as_mut_ptr() as usize;
    pool.run(heads, &|part, parts| {
        let mut s = vec![0.0f32; t * t];
        for head in (part..heads).step_by(parts) {
            let (q, k, v) = (&q[head * t * DH..], &k[head * t * DH..], &v[head * t * DH..]);
            for i in 0..t {
                for j in 0..t {
                    let mut acc = 0.0;
                    for d in 0..DH {
                        acc += q[i * DH + d] * k[j * DH + d];
                    }
                    s[i * t + j] = acc * scale;
                }
                softmax_row(&mut s[i * t..(i + 1) * t], if causal { i + 1 } else { t });
            }
            // SAFETY: each head's output rows belong to exactly one part, and `out` outlives the
            // pool job.
            let o = unsafe { std::slice::from_raw_parts_mut((out_ptr as *mut f32).add(head * t * DH), t * DH) };
            o.fill(0.0);
            for i in 0..t {
                for j in 0..t {
                    let p = s[i * t + j];
                    for d in 0..DH {
                        o[i * DH + d] += p * v[j * DH + d];
                    }
                }
            }
        }
    });
}

/// Materialising attention with the mlc GEMM (threads inside each GEMM) and a row softmax.
fn gemm_softmax(pool: &ThreadPool, t: usize, causal: bool, [q, k, v]: [&[f32]; 3], out: &mut [f32], s: &mut [f32]) {
    let scale = AttentionOpts::default_scale(DH);
    let scores = GemmOpts {
        alpha: scale,
        ..GemmOpts::default()
    };
    for head in 0..B * H {
        let r = head * t * DH..(head + 1) * t * DH;
        gemm(
            pool,
            MatRef::new(&q[r.clone()], t, DH, DH),
            MatRef::transposed(&k[r.clone()], DH, t, DH),
            MatMut::new(s, t, t, t),
            &scores,
        );
        for i in 0..t {
            softmax_row(&mut s[i * t..(i + 1) * t], if causal { i + 1 } else { t });
        }
        gemm(
            pool,
            MatRef::new(s, t, t, t),
            MatRef::new(&v[r.clone()], t, DH, DH),
            MatMut::new(&mut out[r], t, DH, DH),
            &GemmOpts::default(),
        );
    }
}

struct Args {
    threads: Vec<usize>,
    lengths: Vec<usize>,
    variant: Option<AttentionVariant>,
    naive: bool,
    causal: bool,
}

fn list(s: Option<String>, what: &str) -> Vec<usize> {
    s.unwrap_or_else(|| panic!("{what} N,M"))
        .split(',')
        .map(|x| x.parse().unwrap_or_else(|_| panic!("{what}: not a number: {x}")))
        .collect()
}

fn parse_args() -> Args {
    let mut args = Args {
        threads: vec![1, 2],
        lengths: vec![128, 512, 2048],
        variant: None,
        naive: true,
        causal: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => args.threads = list(it.next(), "--threads"),
            "--t" => args.lengths = list(it.next(), "--t"),
            "--variant" => {
                args.variant = Some(match it.next().expect("--variant NAME").as_str() {
                    "avx2" => AttentionVariant::Avx2Fma,
                    "portable" => AttentionVariant::Portable,
                    other => panic!("unknown variant {other}"),
                })
            }
            "--no-naive" => args.naive = false,
            "--full" => args.causal = false,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let variant = args.variant.unwrap_or_else(AttentionVariant::detect);
    println!(
        "attention B={B} H={H} dh=dv={DH} {}, kernel {variant:?}; ms (GFLOP/s of useful work)",
        if args.causal { "causal" } else { "full" }
    );
    println!(
        "{:>6} {:>7} {:>20} {:>20} {:>20} {:>9}",
        "T", "threads", "blocked", "gemm+softmax", "naive", "max |diff|"
    );
    for &t in &args.lengths {
        let n = B * H * t * DH;
        let (q, k, v) = (rand_vec(n, 1), rand_vec(n, 2), rand_vec(n, 3));
        let pairs = if args.causal { t * (t + 1) / 2 } else { t * t };
        let gflop = (B * H * pairs * 4 * DH) as f64 / 1e9;
        let show = |secs: f64| format!("{:>8.3} ({:>7.1})", secs * 1e3, gflop / secs);
        let mut s = vec![0.0f32; t * t];
        for &threads in &args.threads {
            let pool = ThreadPool::new(threads);
            let opts = AttentionOpts {
                causal: args.causal,
                variant: Some(variant),
                ..AttentionOpts::new(AttentionOpts::default_scale(DH))
            };
            let mut out = vec![0.0f32; n];
            let budget = Duration::from_millis(500);
            let blocked = best_time(budget, 5, || {
                attention(
                    &pool,
                    threads,
                    Tensor4Ref::new(&q, [B, H, t, DH]),
                    Tensor4Ref::new(&k, [B, H, t, DH]),
                    Tensor4Ref::new(&v, [B, H, t, DH]),
                    Tensor4Mut::new(&mut out, [B, H, t, DH]),
                    &opts,
                );
                black_box(&out);
            });
            let mut out_gemm = vec![0.0f32; n];
            let with_gemm = best_time(budget, 3, || {
                gemm_softmax(&pool, t, args.causal, [&q, &k, &v], &mut out_gemm, &mut s);
                black_box(&out_gemm);
            });
            let diff = out.iter().zip(&out_gemm).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            let naive_col = if args.naive {
                let mut out_naive = vec![0.0f32; n];
                let runs = if t >= 1024 { 1 } else { 3 };
                show(best_time(budget, runs, || {
                    naive(&pool, t, args.causal, [&q, &k, &v], &mut out_naive);
                    black_box(&out_naive);
                }))
            } else {
                "-".into()
            };
            println!(
                "{t:>6} {threads:>7} {:>20} {:>20} {:>20} {diff:>9.2e}",
                show(blocked),
                show(with_gemm),
                naive_col
            );
        }
    }
}
