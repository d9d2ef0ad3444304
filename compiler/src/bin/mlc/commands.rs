//! The subcommands.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use mlc_compiler::driver::{Compiled, compile_file};
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{Bindings, Module, passes};
use mlc_runtime::{RunOptions, Tensor, Weights, safetensors_io};

use crate::CliError;
use crate::options::{
    Backend, BuildArgs, CheckArgs, DumpArgs, Emit, InitInputsArgs, InitWeightsArgs, ModelArgs, RunArgs,
};
use mlc_compiler::example::Example;

/// Splits `NAME=VALUE` items (each item may hold several, comma-separated).
pub fn parse_pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>, CliError> {
    let mut out = Vec::new();
    for item in items.iter().flat_map(|s| s.split(',')).filter(|s| !s.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(CliError::user(format!(
                "error: bad {what} `{item}`: expected NAME=VALUE"
            )));
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(out)
}

/// Parses `--bind B=2,T=16` into dim bindings.
pub fn parse_bindings(items: &[String]) -> Result<Bindings, CliError> {
    let mut b = Bindings::new();
    for (k, v) in parse_pairs(items, "binding")? {
        let n: i64 = v.parse().ok().filter(|n| *n >= 0).ok_or_else(|| {
            CliError::user(format!(
                "error: bad size `{v}` for dim `{k}`: expected a non-negative integer"
            ))
        })?;
        b.insert(k, n);
    }
    Ok(b)
}

/// Parses `--range tokens=256` into integer input bounds.
pub fn parse_ranges(items: &[String]) -> Result<HashMap<String, i64>, CliError> {
    let mut r = HashMap::new();
    for (k, v) in parse_pairs(items, "range")? {
        let n: i64 = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            CliError::user(format!(
                "error: bad range `{v}` for input `{k}`: expected a positive integer"
            ))
        })?;
        r.insert(k, n);
    }
    Ok(r)
}

fn lower_options(set: &[String], entry: Option<&str>) -> Result<LowerOptions, CliError> {
    Ok(LowerOptions {
        overrides: parse_pairs(set, "--set")?,
        entries: entry.map(|e| vec![e.to_string()]).unwrap_or_default(),
    })
}

fn compile(m: &ModelArgs, entry: Option<&str>) -> Result<Compiled, CliError> {
    Ok(compile_file(&m.file, &lower_options(&m.set, entry)?)?)
}

/// Runs the standard pipeline and checks that the result still verifies.
pub fn optimize(module: &mut Module) -> Result<(), CliError> {
    mlc_compiler::driver::optimize(module).map_err(|e| CliError::Internal(e.to_string()))
}

fn verify(module: &Module, after: &str) -> Result<(), CliError> {
    mlc_ir::verify_module(module).map_err(|errs| {
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        CliError::Internal(format!("the graph does not verify after {after}:\n{}", msgs.join("\n")))
    })
}

pub fn check(a: &CheckArgs) -> Result<(), CliError> {
    let c = compile(&a.model, None)?;
    let m = &c.module;
    let elements: u64 = m.params.iter().map(|p| p.shape.iter().product::<u64>()).sum();
    if m.functions.is_empty() && m.name.is_empty() {
        println!(
            "ok: {} (no model; {} file(s) checked)",
            a.model.file.display(),
            c.program.files.len()
        );
        return Ok(());
    }
    println!(
        "ok: model {} with {} parameter tensor(s), {} weights",
        m.name,
        m.params.len(),
        elements
    );
    for f in &m.functions {
        let ins: Vec<String> = f
            .graph
            .inputs
            .iter()
            .map(|n| {
                let node = f.graph.node(*n);
                format!("{}: {}", node.origin.name, node.outputs[0])
            })
            .collect();
        let outs: Vec<String> = f
            .graph
            .outputs
            .iter()
            .map(|(n, v)| format!("{n}: {}", f.graph.ty(*v)))
            .collect();
        println!(
            "  entry {}({}) -> ({}), {} nodes",
            f.name,
            ins.join(", "),
            outs.join(", "),
            count_nodes(&f.graph)
        );
    }
    Ok(())
}

/// Nodes including those in loop bodies.
fn count_nodes(g: &mlc_ir::Graph) -> usize {
    g.dag
        .node_weights()
        .map(|n| {
            1 + if let mlc_ir::Op::Loop(l) = &n.op {
                count_nodes(&l.body)
            } else {
                0
            }
        })
        .sum()
}

/// The module after the stage `after` (`lower`, a pass name, or the full pipeline when None),
/// with every stage printed under a header when `after` is `all`.
fn staged(a: &DumpArgs, mut print_stage: impl FnMut(&str, &Module)) -> Result<Module, CliError> {
    let c = compile(&a.model, a.entry.as_deref())?;
    let mut module = c.module;
    match a.after.as_deref() {
        Some("lower") => print_stage("lower", &module),
        Some("all") => {
            print_stage("lower", &module);
            passes::run_pipeline(&mut module, None, |name, m| print_stage(name, m))
                .map_err(|e| CliError::user(format!("error: {e}")))?;
        }
        upto => {
            let mut last = None;
            passes::run_pipeline(&mut module, upto, |name, _| last = Some(name.to_string()))
                .map_err(|e| CliError::user(format!("error: {e} (or `lower`, `all`)")))?;
            print_stage(last.as_deref().unwrap_or("lower"), &module);
        }
    }
    verify(&module, "the passes")?;
    Ok(module)
}

pub fn dump_ir(a: &DumpArgs) -> Result<(), CliError> {
    if a.after.as_deref() == Some("fuse") {
        // The fused plan: kernels (Kernel IR) and each entry's steps over buffers.
        let c = compile(&a.model, a.entry.as_deref())?;
        let mut module = c.module;
        optimize(&mut module)?;
        let plan = mlc_sched::plan_module(&module).map_err(|e| CliError::Internal(e.to_string()))?;
        print!("{}", mlc_ir::print_plan(&plan));
        return Ok(());
    }
    let all = a.after.as_deref() == Some("all");
    staged(a, |stage, m| {
        if all {
            println!("// ---- after {stage} ----");
        }
        print!("{}", mlc_ir::print_module(m));
    })?;
    Ok(())
}

pub fn dot(a: &DumpArgs) -> Result<(), CliError> {
    if a.after.as_deref() == Some("all") {
        return Err(CliError::user(
            "error: `mlc dot` shows one stage: use `--after lower` or a pass name",
        ));
    }
    let mut module = None;
    staged(a, |_, m| module = Some(m.clone()))?;
    let module = module.expect("a stage was printed");
    for f in &module.functions {
        print!("{}", mlc_ir::graph_to_dot(&f.graph, &f.name));
    }
    Ok(())
}

pub fn init_weights(a: &InitWeightsArgs) -> Result<(), CliError> {
    let c = compile(&a.model, None)?;
    let tensors = mlc_runtime::init_weights(&c.module, a.seed);
    safetensors_io::save(&a.out, &tensors)?;
    println!("wrote {} weight tensor(s) to {}", tensors.len(), a.out.display());
    Ok(())
}

/// The entry to run: the one asked for, else the only one, else `forward`.
pub fn pick_entry<'m>(module: &'m Module, asked: Option<&str>) -> Result<&'m mlc_ir::Function, CliError> {
    let names = || {
        module
            .functions
            .iter()
            .map(|f| format!("`{}`", f.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked {
        Some(e) => module
            .function(e)
            .ok_or_else(|| CliError::user(format!("error: no entry `{e}`; the model has {}", names()))),
        None if module.functions.len() == 1 => Ok(&module.functions[0]),
        None => module.function("forward").ok_or_else(|| {
            CliError::user(format!(
                "error: the model has several entries ({}); choose one with --entry",
                names()
            ))
        }),
    }
}

pub fn init_inputs(a: &InitInputsArgs) -> Result<(), CliError> {
    let c = compile(&a.model, a.entry.as_deref())?;
    let f = pick_entry(&c.module, a.entry.as_deref())?;
    let inputs = random_inputs(f, &parse_bindings(&a.bind)?, &parse_ranges(&a.ranges)?, a.seed)?;
    safetensors_io::save(&a.out, &inputs)?;
    println!(
        "wrote {} input tensor(s) for entry `{}` to {}",
        inputs.len(),
        f.name,
        a.out.display()
    );
    Ok(())
}

pub fn random_inputs(
    f: &mlc_ir::Function,
    bind: &Bindings,
    ranges: &HashMap<String, i64>,
    seed: u64,
) -> Result<Vec<(String, Tensor)>, CliError> {
    let unbound: Vec<String> = f
        .graph
        .input_types()
        .iter()
        .flat_map(|t| t.shape.iter().flat_map(|d| d.symbols()))
        .filter(|s| !bind.contains_key(s))
        .collect();
    if let Some(s) = unbound.first() {
        return Err(CliError::user(format!(
            "error: entry `{}` needs a size for dim `{s}`: pass --bind {s}=N",
            f.name
        )));
    }
    Ok(mlc_runtime::init_inputs_with_ranges(f, bind, ranges, seed)?)
}

fn default_out(file: &Path, ext: &str) -> PathBuf {
    file.with_extension(ext)
}

pub fn build(a: &BuildArgs) -> Result<(), CliError> {
    let c = compile(&a.model, None)?;
    let mut module = c.module;
    optimize(&mut module)?;
    if a.emit == Emit::Obj {
        crate::aot::emit_obj(&module, &a.model.file, a.out.as_deref())?;
        return if a.stats {
            print_stats(&module, &parse_bindings(&a.bind)?)
        } else {
            Ok(())
        };
    }
    let (text, ext) = match a.emit {
        Emit::Package => (mlc_runtime::package::to_text(&module), "mlcpkg"),
        Emit::Ir => (mlc_ir::print_module(&module), "mlir.txt"),
        Emit::Dot => (
            module
                .functions
                .iter()
                .map(|f| mlc_ir::graph_to_dot(&f.graph, &f.name))
                .collect::<String>(),
            "dot",
        ),
        Emit::Obj => unreachable!("written above"),
    };
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.model.file, ext));
    fs::write(&out, text).map_err(|e| CliError::user(format!("error: cannot write {}: {e}", out.display())))?;
    println!("wrote {}", out.display());
    if a.stats {
        print_stats(&module, &parse_bindings(&a.bind)?)?;
    }
    Ok(())
}

/// The memory plan of every entry point (and loop body) with the given dim sizes.
fn print_stats(module: &Module, bind: &Bindings) -> Result<(), CliError> {
    let plan = mlc_sched::plan_module(module).map_err(|e| CliError::Internal(e.to_string()))?;
    for f in &plan.functions {
        stats_of(&plan, f, bind, 0)?;
    }
    Ok(())
}

fn stats_of(
    plan: &mlc_ir::ModulePlan,
    f: &mlc_ir::FunctionPlan,
    bind: &Bindings,
    depth: usize,
) -> Result<(), CliError> {
    let mut bind = bind.clone();
    for b in &f.bufs {
        for s in b.ty.shape.iter().flat_map(|d| d.symbols()) {
            bind.entry(s).or_insert(1);
        }
    }
    let sizes: Vec<usize> = f
        .bufs
        .iter()
        .map(|b| {
            let n: i64 = b.ty.shape.iter().map(|d| d.eval(&bind).unwrap_or(1).max(0)).product();
            n as usize * b.ty.dtype.size_bytes()
        })
        .collect();
    let layout = mlc_sched::memory::plan_arena(plan, f, &sizes);
    let count = |pred: fn(&mlc_ir::Step) -> bool| f.steps.iter().filter(|s| pred(s)).count();
    let mut dims: Vec<String> = bind.iter().map(|(k, v)| format!("{k}={v}")).collect();
    dims.sort();
    let ratio = if layout.max_live == 0 {
        1.0
    } else {
        layout.peak as f64 / layout.max_live as f64
    };
    println!(
        "{}{} ({}): arena peak {} B, all temporaries {} B, largest live set {} B (peak/live {ratio:.2}); {} kernels, {} matmuls, {} reference ops, {} loops",
        "  ".repeat(depth),
        f.name,
        dims.join(", "),
        layout.peak,
        layout.total,
        layout.max_live,
        count(|s| matches!(s, mlc_ir::Step::Kernel { .. })),
        count(|s| matches!(s, mlc_ir::Step::MatMul { .. })),
        count(|s| matches!(s, mlc_ir::Step::Op { .. })),
        count(|s| matches!(s, mlc_ir::Step::Loop { .. })),
    );
    for s in &f.steps {
        if let mlc_ir::Step::Loop { body, .. } = s {
            stats_of(plan, body, &bind, depth + 1)?;
        }
    }
    Ok(())
}

/// Loads a module from a `.dsl` file (compiled and optimised) or a package.
pub fn load_module(path: &Path, set: &[String], entry: Option<&str>) -> Result<Module, CliError> {
    load_module_timed(path, set, entry, &mut PhaseClock::start())
}

/// Wall time per compile phase: each [`PhaseClock::lap`] records, in milliseconds, the time
/// since the previous lap (or the start).
pub struct PhaseClock {
    since: std::time::Instant,
    /// The phases timed so far, in order.
    pub phases: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    /// A clock starting now, with no phase yet.
    pub fn start() -> PhaseClock {
        PhaseClock {
            since: std::time::Instant::now(),
            phases: Vec::new(),
        }
    }

    /// Ends phase `name` now; the next one starts.
    pub fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.phases.push((name, (now - self.since).as_secs_f64() * 1e3));
        self.since = now;
    }
}

/// [`load_module`], timing its phases on `clock`: `parse`, `lower` (with verification) and
/// `optimize` (the passes, verified) for a `.dsl` file; `load` for a package.
pub fn load_module_timed(
    path: &Path,
    set: &[String],
    entry: Option<&str>,
    clock: &mut PhaseClock,
) -> Result<Module, CliError> {
    if path.extension().is_some_and(|e| e == "dsl") {
        let opts = lower_options(set, entry)?;
        let program = mlc_compiler::driver::load_file(path)?;
        clock.lap("parse");
        let mut module = mlc_compiler::driver::lower_loaded(program, &opts)?.module;
        clock.lap("lower");
        optimize(&mut module)?;
        clock.lap("optimize");
        Ok(module)
    } else {
        if !set.is_empty() {
            return Err(CliError::user(
                "error: --set needs a .dsl file; a package is already compiled",
            ));
        }
        let module = mlc_runtime::package::load(path)?;
        clock.lap("load");
        Ok(module)
    }
}

pub fn run(a: &RunArgs) -> Result<(), CliError> {
    if matches!(a.backend, Backend::Cuda | Backend::Mlir) {
        let name = format!("{:?}", a.backend).to_lowercase();
        return Err(CliError::user(format!(
            "error: backend `{name}` is not available in this build of mlc; use --backend cpu or --backend interp"
        )));
    }
    let ex = if a.target.is_dir() {
        Some(Example::load(&a.target).map_err(|e| CliError::user(format!("error: {e}")))?)
    } else {
        None
    };
    let (model_path, mut set) = match &ex {
        Some(e) => (e.model_path(), e.set_flags()),
        None => (a.target.clone(), Vec::new()),
    };
    set.extend(a.set.iter().cloned());
    let entry_name = a.entry.clone().or_else(|| ex.as_ref().map(|e| e.entry.clone()));
    let module = load_module(&model_path, &set, entry_name.as_deref())?;
    let f = pick_entry(&module, entry_name.as_deref())?;
    let seed = a.seed.or(ex.as_ref().map(|e| e.seed)).unwrap_or(0);

    let weights_path = a.weights.clone().or_else(|| ex.as_ref().and_then(|e| e.weights_path()));
    let weights = match &weights_path {
        Some(p) => {
            let file = safetensors_io::load(p)?;
            Weights::bind(&module, &file).map_err(|errs| weight_errors(p, &errs))?
        }
        None => {
            if !module.params.is_empty() {
                eprintln!("note: no --weights given; using seeded random weights (seed {seed})");
            }
            Weights::from_tensors(&module, mlc_runtime::init_weights(&module, seed))
                .map_err(|errs| CliError::Internal(format!("random weights do not bind: {errs:?}")))?
        }
    };
    let inputs_path = a.inputs.clone().or_else(|| ex.as_ref().and_then(|e| e.inputs_path()));
    let inputs = match &inputs_path {
        Some(p) => safetensors_io::load(p)?.tensors()?,
        None => {
            let mut bind = ex.as_ref().map(|e| e.bind.clone()).unwrap_or_default();
            bind.extend(parse_bindings(&a.bind)?);
            let mut ranges = ex.as_ref().map(|e| e.ranges.clone()).unwrap_or_default();
            ranges.extend(parse_ranges(&a.ranges)?);
            random_inputs(f, &bind, &ranges, seed)?
        }
    };
    let entry = f.name.clone();
    let name = module.name.clone();
    let backend = if a.check_numerics { Backend::Interp } else { a.backend };
    if a.check_numerics && a.backend != Backend::Interp {
        eprintln!("note: --check-numerics runs the interpreter, which checks every intermediate value");
    }
    let opts = RunOptions {
        check_numerics: a.check_numerics,
        max_elements: a.max_elements,
        max_arena_bytes: a.max_arena_bytes,
        max_loop_trips: a.max_loop_trips,
    };
    let outputs = match backend {
        Backend::Cpu => {
            let mut model = mlc_runtime::Model::from_module(module)?;
            model.set_weights(weights);
            let mut session = model.session()?;
            if let Some(n) = a.threads {
                session.set_threads(n);
            }
            session.set_options(opts);
            session.run(&entry, &inputs)?
        }
        _ => mlc_runtime::run(&module, &entry, &weights, &inputs, &opts)?,
    };
    println!("{name} `{entry}` via {}:", format!("{:?}", backend).to_lowercase());
    for (name, t) in &inputs {
        println!("  input  {name}: {}", t.summary());
    }
    for (name, t) in &outputs {
        println!("  output {name}: {}", t.summary());
    }
    if let Some(out) = &a.out {
        safetensors_io::save(out, &outputs)?;
        println!("wrote {} output tensor(s) to {}", outputs.len(), out.display());
    }
    Ok(())
}

fn weight_errors(path: &Path, errs: &[mlc_runtime::WeightError]) -> CliError {
    let lines: Vec<String> = errs.iter().map(|e| format!("error: {}: {e}", path.display())).collect();
    CliError::user(lines.join("\n"))
}
