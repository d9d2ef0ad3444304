//! Property test: random well-typed Graph IR programs (random ops, shapes, broadcasts,
//! reductions, loops; see `random_graphs/generate.rs`) must verify, round-trip through the text
//! form, survive the standard pipeline with the same results in the reference interpreter, and
//! run on the CPU backend (`mlc_runtime::Model`) with the interpreter's results: f32 within a
//! relative error of 1e-5 (`|a - b| <= 1e-5 * max(1, |a|)`), integers and bools exactly, RNG
//! values bit for bit, and with the same bits whatever the number of threads.
//!
//! A failure is minimised (values replaced by same-typed operands or fresh inputs, outputs
//! dropped, while the failure persists) and reported with the seed, the minimised module and
//! both outputs.
//!
//! - `MLC_RANDOM_CASES=N` runs N cases (default 2000, split over the shards below).
//! - `MLC_RANDOM_SEED=S` runs the one case of seed S (in `..._shard_0`).
//! - `MLC_RANDOM_VERBOSE=1` prints each seed before running it, and the module.
//! - `MLC_RANDOM_MODULE=FILE` checks the module in FILE (a minimised module as a failure
//!   prints it, with its `// random-graphs seed=...` header line) instead of generated ones.
//! - `MLC_RANDOM_AVOID=tag,...` leaves out constructs with a known bug, to look past it (see
//!   `generate::avoid`).
//!
//! Reproduce a reported failure with
//! `MLC_RANDOM_SEED=S cargo test -p mlc-compiler --test random_graphs`.

mod random_graphs {
    pub mod check;
    pub mod generate;
    pub mod minimise;
    pub mod rng;
}

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mlc_ir::{Graph, Op};
use random_graphs::check::{CpuInput, Env, Failure, Kind, Outcome, Which, check, static_checks};
use random_graphs::generate::{Case, avoid, generate};
use random_graphs::minimise::{minimise, size};

/// The shards of the differential test (separate tests, so that they run in parallel).
const SHARDS: u64 = 4;
const DEFAULT_CASES: u64 = 2000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

fn verbose() -> bool {
    std::env::var("MLC_RANDOM_VERBOSE").is_ok_and(|v| v != "0" && !v.is_empty())
}

/// The seeds of one shard.
fn seeds(shard: u64) -> Vec<u64> {
    if let Some(s) = env_u64("MLC_RANDOM_SEED") {
        return if shard == 0 { vec![s] } else { vec![] };
    }
    let n = env_u64("MLC_RANDOM_CASES").unwrap_or(DEFAULT_CASES);
    (0..n).filter(|s| s % SHARDS == shard).collect()
}

fn env_of(case: &Case) -> Env {
    Env {
        seed: case.seed,
        bindings: case.bindings.clone(),
        ranges: case.ranges.clone(),
    }
}

/// Even seeds run the optimised module on the CPU backend, odd seeds the generated one (with
/// dead code, duplicates and unfolded constants); sessions have 1, 2 or 3 threads.
fn cpu_input(seed: u64) -> CpuInput {
    CpuInput {
        which: if seed.is_multiple_of(2) || avoid("raw-cpu") {
            Which::Optimised
        } else {
            Which::Raw
        },
        threads: 1 + (seed / 2 % 3) as usize,
    }
}

fn sorted_map<V: std::fmt::Debug>(m: &std::collections::HashMap<String, V>) -> String {
    let b: BTreeMap<&String, &V> = m.iter().collect();
    format!("{b:?}")
}

/// Minimises a failing case and formats the report.
fn report(case: &Case, cpu: Option<CpuInput>, failure: &Failure) -> String {
    let env = env_of(case);
    let kind = failure.kind.clone();
    let mut fails = |m: &mlc_ir::Module| matches!(check(m, &env, cpu), Outcome::Fail(f) if f.kind == kind);
    let before = size(&case.module.functions[0].graph);
    let t = Instant::now();
    let (small, calls) = minimise(&case.module, &mut fails, 2000, Duration::from_secs(30));
    let after = size(&small.functions[0].graph);
    // The plan the CPU backend ran, for CPU failures.
    let plan = match (&failure.kind, cpu) {
        (Kind::Static | Kind::Passes, _) | (_, None) => String::new(),
        (_, Some(which)) => {
            let target = match which.which {
                Which::Raw => Ok(small.clone()),
                Which::Optimised => static_checks(&small),
            };
            match target.map(|t| mlc_sched::plan_module(&t)) {
                Ok(Ok(p)) => format!("--- plan\n{}", mlc_ir::print_plan(&p)),
                Ok(Err(e)) => format!("--- plan\n(fails: {e})\n"),
                Err(e) => format!("--- plan\n(no optimised module: {e})\n"),
            }
        }
    };
    let message = match check(&small, &env, cpu) {
        Outcome::Fail(f) => f.message,
        _ => "(the minimised module no longer fails; this is the original failure)".to_string() + &failure.message,
    };
    format!(
        "seed {seed}: {kind:?}\n\
         dims {dims}, integer input ranges {ranges}, CPU backend: {cpu:?}\n\
         minimised from {before} to {after} nodes ({calls} tries, {:.1} s)\n\
         reproduce: MLC_RANDOM_SEED={seed} cargo test -p mlc-compiler --test random_graphs\n\
         (or save the minimised module to a file and run with MLC_RANDOM_MODULE=that-file)\n\
         --- minimised module\n{header}{text}{plan}--- failure\n{message}\n",
        t.elapsed().as_secs_f64(),
        seed = case.seed,
        kind = failure.kind,
        dims = sorted_map(&case.bindings),
        ranges = sorted_map(&case.ranges),
        text = mlc_ir::print_module(&small),
        header = header(&env, cpu),
    )
}

/// The first line of a reported module: what it runs with, for `MLC_RANDOM_MODULE`.
fn header(env: &Env, cpu: Option<CpuInput>) -> String {
    let pairs = |m: &std::collections::HashMap<String, i64>| {
        let b: BTreeMap<&String, &i64> = m.iter().collect();
        b.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
    };
    let cpu = match cpu {
        None => "none".to_string(),
        Some(c) => format!(
            "{}:{}",
            if c.which == Which::Raw { "raw" } else { "optimised" },
            c.threads
        ),
    };
    format!(
        "// random-graphs seed={} dims={} ranges={} cpu={cpu}\n",
        env.seed,
        pairs(&env.bindings),
        pairs(&env.ranges)
    )
}

/// The case in the file `MLC_RANDOM_MODULE` names: a module in the IR text form whose first
/// line is the [`header`] of a report.
fn case_from_file(path: &str) -> (Case, Option<CpuInput>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let module = mlc_ir::parse_module(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let line = text
        .lines()
        .find(|l| l.starts_with("// random-graphs "))
        .unwrap_or_else(|| panic!("{path}: no `// random-graphs seed=...` header line"));
    let mut case = Case {
        seed: 0,
        module,
        bindings: Default::default(),
        ranges: Default::default(),
    };
    let mut cpu = None;
    let pairs = |v: &str| -> Vec<(String, i64)> {
        v.split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, n) = p.split_once(':').expect("name:value");
                (k.to_string(), n.parse().expect("a number"))
            })
            .collect()
    };
    for field in line["// random-graphs ".len()..].split_whitespace() {
        let (key, value) = field.split_once('=').expect("key=value");
        match key {
            "seed" => case.seed = value.parse().expect("a seed"),
            "dims" => case.bindings = pairs(value).into_iter().collect(),
            "ranges" => case.ranges = pairs(value).into_iter().collect(),
            "cpu" if value == "none" => {}
            "cpu" => {
                let (which, threads) = value.split_once(':').expect("raw|optimised:threads");
                cpu = Some(CpuInput {
                    which: if which == "raw" { Which::Raw } else { Which::Optimised },
                    threads: threads.parse().expect("threads"),
                });
            }
            _ => panic!("{path}: unknown header field `{key}`"),
        }
    }
    (case, cpu)
}

/// Runs the cases of a shard; panics with the minimised failures.
fn run_shard(shard: u64, with_cpu: bool) {
    let start = Instant::now();
    let (mut pass, mut skips) = (0usize, BTreeMap::<String, usize>::new());
    let mut failures: Vec<(Case, Option<CpuInput>, Failure)> = Vec::new();
    let seeds = seeds(shard);
    let file = std::env::var("MLC_RANDOM_MODULE").ok().filter(|f| !f.is_empty());
    let cases: Box<dyn Iterator<Item = (Case, Option<CpuInput>)>> = match file {
        Some(f) if shard == 0 => Box::new(std::iter::once(case_from_file(&f))),
        Some(_) => Box::new(std::iter::empty()),
        None => Box::new(
            seeds
                .iter()
                .map(|&seed| (generate(seed), with_cpu.then(|| cpu_input(seed)))),
        ),
    };
    let mut n_cases = 0;
    for (case, cpu) in cases {
        n_cases += 1;
        if verbose() {
            eprintln!("seed {}:\n{}", case.seed, mlc_ir::print_module(&case.module));
        }
        match check(&case.module, &env_of(&case), cpu) {
            Outcome::Pass => pass += 1,
            Outcome::Skip(why) => {
                let key: String = why.chars().take(60).collect();
                *skips.entry(key).or_default() += 1;
            }
            Outcome::Fail(f) => failures.push((case, cpu, f)),
        }
    }
    let n_skip: usize = skips.values().sum();
    eprintln!(
        "shard {shard}: {n_cases} cases in {:.1} s: {pass} pass, {n_skip} skipped (the interpreter rejects them), {} fail",
        start.elapsed().as_secs_f64(),
        failures.len()
    );
    for (why, n) in &skips {
        eprintln!("  skipped {n}×: {why}");
    }
    for (case, _, f) in &failures {
        let line = f.message.lines().take(2).collect::<Vec<_>>().join(" / ");
        eprintln!("  seed {} fails: {line}", case.seed);
    }
    // Too many skips would mean the generator mostly builds programs that do not run.
    assert!(
        n_skip * 10 <= n_cases.max(10),
        "{n_skip} of {n_cases} cases skipped: {skips:?}"
    );
    if failures.is_empty() {
        return;
    }
    // Minimise the first failure of each kind; list the seeds of the others.
    let mut by_kind: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut reports = Vec::new();
    for (case, cpu, f) in &failures {
        let key = format!("{:?}", f.kind);
        let seen = by_kind.contains_key(&key);
        by_kind.entry(key).or_default().push(case.seed);
        if !seen {
            reports.push(report(case, *cpu, f));
        }
    }
    panic!(
        "{} of {n_cases} random programs fail; seeds by kind: {by_kind:?}\n\n{}",
        failures.len(),
        reports.join("\n")
    );
}

#[test]
fn random_programs_cpu_backend_matches_interpreter_shard_0() {
    run_shard(0, true);
}

#[test]
fn random_programs_cpu_backend_matches_interpreter_shard_1() {
    run_shard(1, true);
}

#[test]
fn random_programs_cpu_backend_matches_interpreter_shard_2() {
    run_shard(2, true);
}

#[test]
fn random_programs_cpu_backend_matches_interpreter_shard_3() {
    run_shard(3, true);
}

fn mnemonics(g: &Graph, out: &mut BTreeSet<&'static str>) {
    for n in g.dag.node_indices() {
        let op = &g.dag[n].op;
        out.insert(op.mnemonic());
        if let Op::Loop(l) = op {
            if l.has_stop {
                out.insert("loop+stop");
            }
            if l.body
                .dag
                .node_indices()
                .any(|b| matches!(l.body.dag[b].op, Op::Loop(_)))
            {
                out.insert("nested loop");
            }
            mnemonics(&l.body, out);
        }
    }
}

/// The generator reaches every op of the IR (but `dynamic_update_slice`'s cousins that the
/// IR lacks), so the property test means what it says.
#[test]
fn random_programs_cover_every_op() {
    let mut seen = BTreeSet::new();
    for seed in 0..env_u64("MLC_RANDOM_CASES").unwrap_or(DEFAULT_CASES).max(DEFAULT_CASES) {
        mnemonics(&generate(seed).module.functions[0].graph, &mut seen);
    }
    let mut expected: BTreeSet<&str> = BTreeSet::new();
    for u in Op::UNARY {
        expected.insert(Op::Unary(u).mnemonic());
    }
    for b in Op::BINARY {
        expected.insert(Op::Binary(b).mnemonic());
    }
    expected.extend([
        "input",
        "param",
        "const",
        "dim",
        "select",
        "cast",
        "reduce_sum",
        "reduce_prod",
        "reduce_max",
        "reduce_min",
        "reduce_any",
        "reduce_all",
        "argmax",
        "argmin",
        "reshape",
        "permute",
        "expand",
        "slice",
        "concat",
        "pad",
        "matmul",
        "gather",
        "take",
        "scatter",
        "dynamic_slice",
        "dynamic_update_slice",
        "iota",
        "cumsum",
        "topk",
        "rng_uniform",
        "loop",
        "loop+stop",
        "nested loop",
    ]);
    let missing: Vec<&&str> = expected.iter().filter(|e| !seen.contains(**e)).collect();
    assert!(missing.is_empty(), "the generator never produces {missing:?}");
}

/// Not a check: what the CPU backend's plans of the generated programs consist of (kernels,
/// matrix products, reference-op steps, loops), to see which paths the property test reaches.
/// `cargo test -p mlc-compiler --test random_graphs plan_statistics -- --ignored --nocapture`
#[test]
#[ignore]
fn random_programs_plan_statistics() {
    use mlc_ir::Step;
    fn count(steps: &[Step], c: &mut BTreeMap<String, usize>) {
        for s in steps {
            let k = match s {
                Step::Kernel { .. } => "kernel".to_string(),
                Step::MatMul { b_transposed, .. } => format!("matmul (b transposed: {b_transposed})"),
                Step::Op { op, .. } => format!("reference op {}", op.mnemonic()),
                Step::Loop { body, .. } => {
                    count(&body.steps, c);
                    "loop".to_string()
                }
                #[allow(unreachable_patterns)]
                _ => "other".to_string(),
            };
            *c.entry(k).or_default() += 1;
        }
    }
    let n = env_u64("MLC_RANDOM_CASES").unwrap_or(DEFAULT_CASES);
    let (mut c, mut nodes) = (BTreeMap::new(), 0);
    for seed in 0..n {
        let case = generate(seed);
        nodes += size(&case.module.functions[0].graph);
        let m = match cpu_input(seed).which {
            Which::Optimised => static_checks(&case.module).expect("static checks"),
            Which::Raw => case.module.clone(),
        };
        if let Ok(p) = mlc_sched::plan_module(&m) {
            for f in &p.functions {
                count(&f.steps, &mut c);
            }
        }
    }
    eprintln!(
        "{n} programs, {:.1} nodes on average; plan steps: {c:#?}",
        nodes as f64 / n as f64
    );
}
