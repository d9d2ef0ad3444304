//! Times one entry point of a package in steady state: outputs written into the previous
//! run's allocations ([`mlc_runtime::Session::run_into`]), so no run pays for fresh pages.
//! `bench/bandwidth.sh` uses it next to `mlc bench` (which returns fresh tensors every run).
//!
//!   cargo run --release -p mlc-runtime --example steady_bench -- PKG DIMS [ITERS] [THREADS] [ENTRY]
//!
//! `DIMS` is `N=16384,D=1024` (or `-` for none); random weights and inputs (seed 0). Prints one
//! JSON line: `{"median_ms", "min_ms", "threads", "iters"}`.

use std::collections::HashMap;
use std::time::Instant;

use mlc_runtime::{Model, Weights, init_inputs, init_weights};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: steady_bench PKG DIMS [ITERS] [THREADS] [ENTRY]";
    let pkg = args.first().ok_or(usage)?;
    let mut bind = HashMap::new();
    if let Some(dims) = args.get(1).filter(|d| d.as_str() != "-") {
        for kv in dims.split(',') {
            let (k, v) = kv.split_once('=').ok_or(usage)?;
            bind.insert(k.trim().to_string(), v.trim().parse::<i64>()?);
        }
    }
    let iters: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let threads: Option<usize> = args.get(3).map(|s| s.parse()).transpose()?;

    let mut model = Model::load(pkg)?;
    let entry = match args.get(4) {
        Some(e) => e.clone(),
        None => model
            .entries()
            .first()
            .ok_or("the package has no entry point")?
            .to_string(),
    };
    let weights = Weights::from_tensors(model.module(), init_weights(model.module(), 0))
        .map_err(|e| format!("random weights do not bind: {e:?}"))?;
    model.set_weights(weights);
    let function = model.module().function(&entry).ok_or("no such entry")?;
    let inputs = init_inputs(function, &bind, 0)?;
    let mut session = model.session()?;
    if let Some(n) = threads {
        session.set_threads(n);
    }
    let mut out = Vec::new();
    // Warm-up: the arena's and the outputs' first-touch page faults, thread start-up.
    for _ in 0..2 {
        session.run_into(&entry, &inputs, &mut out)?;
    }
    let mut times: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            session.run_into(&entry, &inputs, &mut out)?;
            Ok(t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, mlc_runtime::RuntimeError>>()?;
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    println!(
        "{{\"median_ms\":{median:.4},\"min_ms\":{:.4},\"threads\":{},\"iters\":{n},\"arena_bytes\":{}}}",
        times[0],
        session.threads(),
        session.arena_bytes()
    );
    Ok(())
}
