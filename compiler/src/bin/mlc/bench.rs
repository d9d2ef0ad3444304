//! `mlc bench`: times one entry point and prints one JSON line, so scripts can compare runs.

use std::time::Instant;

use mlc_compiler::example::Example;
use mlc_runtime::{RunOptions, Weights};

use crate::CliError;
use crate::commands::{PhaseClock, load_module_timed, parse_bindings, parse_ranges, pick_entry, random_inputs};
use crate::options::{Backend, BenchArgs};

pub fn bench(a: &BenchArgs) -> Result<(), CliError> {
    if matches!(a.backend, Backend::Cuda | Backend::Mlir) {
        return Err(CliError::user(
            "error: `mlc bench` runs `--backend cpu` or `--backend interp` in this build",
        ));
    }
    if a.iters == 0 {
        return Err(CliError::user("error: --iters must be at least 1"));
    }
    let ex = if a.target.is_dir() {
        Some(Example::load(&a.target).map_err(|e| CliError::user(format!("error: {e}")))?)
    } else {
        None
    };
    let (path, mut set) = match &ex {
        Some(e) => (e.model_path(), e.set_flags()),
        None => (a.target.clone(), Vec::new()),
    };
    set.extend(a.set.iter().cloned());
    let entry_name = a.entry.clone().or_else(|| ex.as_ref().map(|e| e.entry.clone()));

    // Compile time: parse, lower, optimise, plan, and (for the CPU) JIT every kernel, each
    // phase timed too; weights and inputs are made outside the clock.
    let t0 = Instant::now();
    let mut clock = PhaseClock::start();
    let module = load_module_timed(&path, &set, entry_name.as_deref(), &mut clock)?;
    let plan = mlc_sched::plan_module(&module).map_err(|e| CliError::Internal(e.to_string()))?;
    clock.lap("plan");
    // The CPU model takes the module and plan (no copies on the clock); the interpreter runs
    // the module.
    let mut compiled = match a.backend {
        Backend::Cpu => {
            let model = mlc_runtime::Model::from_plan(module, plan)?;
            clock.lap("codegen");
            Compiled::Cpu(model)
        }
        _ => Compiled::Interp(module, plan),
    };
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;

    let module = compiled.module();
    let f = pick_entry(module, entry_name.as_deref())?.clone();
    let weights = Weights::from_tensors(module, mlc_runtime::init_weights(module, a.seed))
        .map_err(|errs| CliError::Internal(format!("random weights do not bind: {errs:?}")))?;
    let mut bind = ex.as_ref().map(|e| e.bind.clone()).unwrap_or_default();
    bind.extend(parse_bindings(&a.bind)?);
    let mut ranges = ex.as_ref().map(|e| e.ranges.clone()).unwrap_or_default();
    ranges.extend(parse_ranges(&a.ranges)?);
    let inputs = random_inputs(&f, &bind, &ranges, a.seed)?;
    let mut session = match &mut compiled {
        Compiled::Cpu(model) => {
            model.set_weights(weights.clone());
            let mut s = model.session()?;
            if let Some(n) = a.threads {
                s.set_threads(n);
            }
            Some(s)
        }
        Compiled::Interp(..) => None,
    };
    let (module, plan) = (compiled.module(), compiled.plan());

    let mut run_once = || -> Result<(), CliError> {
        match &mut session {
            Some(s) => s.run(&f.name, &inputs).map(|_| ())?,
            None => mlc_runtime::run(module, &f.name, &weights, &inputs, &RunOptions::default()).map(|_| ())?,
        }
        Ok(())
    };
    run_once()?; // warm-up: first-touch allocations, thread start-up
    let mut times = Vec::with_capacity(a.iters);
    for _ in 0..a.iters {
        let t = Instant::now();
        run_once()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    let arena = plan.function(&f.name).map(|fp| {
        let sizes: Vec<usize> = fp
            .bufs
            .iter()
            .map(|b| {
                b.ty.shape
                    .iter()
                    .map(|d| d.eval(&bind).unwrap_or(1).max(0) as usize)
                    .product::<usize>()
                    * b.ty.dtype.size_bytes()
            })
            .collect();
        mlc_sched::memory::plan_arena(plan, fp, &sizes).peak
    });
    let batch = bind.get("B").copied().unwrap_or(1).max(1) as f64;
    let mut dims: Vec<(String, i64)> = bind.into_iter().collect();
    dims.sort();
    let line = serde_json::json!({
        "model": module.name,
        "entry": f.name,
        "backend": format!("{:?}", a.backend).to_lowercase(),
        "bind": dims.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect::<serde_json::Map<String, serde_json::Value>>(),
        "threads": a.threads,
        "iters": a.iters,
        "median_ms": median,
        "min_ms": times[0],
        "runs_per_s": 1e3 / median,
        "items_per_s": batch * 1e3 / median,
        "compile_ms": compile_ms,
        "compile_phases_ms": clock.phases.into_iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v))).collect::<serde_json::Map<String, serde_json::Value>>(),
        "arena_peak_bytes": arena,
    });
    println!("{line}");
    Ok(())
}

/// What `mlc bench` compiled: a CPU model (which owns the module and plan) or, for the
/// interpreter, the module and its plan.
enum Compiled {
    Cpu(mlc_runtime::Model),
    Interp(mlc_ir::Module, mlc_ir::ModulePlan),
}

impl Compiled {
    fn module(&self) -> &mlc_ir::Module {
        match self {
            Compiled::Cpu(m) => m.module(),
            Compiled::Interp(m, _) => m,
        }
    }

    fn plan(&self) -> &mlc_ir::ModulePlan {
        match self {
            Compiled::Cpu(m) => m.plan(),
            Compiled::Interp(_, p) => p,
        }
    }
}
