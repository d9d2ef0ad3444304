//! Checking one module: the static properties (verifier, text round trip, passes) and the
//! differential run of the reference interpreter against the CPU backend.

use std::cell::Cell;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use mlc_ir::{Bindings, DType, Graph, LiteralData, Module, Op, Value, passes};
use mlc_runtime::{Model, RunOptions, Tensor, Weights, init_inputs_with_ranges, init_weights, interp};

use super::generate::ENTRY;

/// Relative tolerance of f32 outputs: `|a - b| <= RTOL * max(1, |a|)`.
pub const RTOL: f64 = 1e-5;
/// Relative tolerance of f16/bf16 outputs.
const HALF_RTOL: f64 = 1e-2;

/// What a module runs with: the seed of its weights and inputs, the dims and integer ranges.
#[derive(Clone, Debug)]
pub struct Env {
    pub seed: u64,
    pub bindings: Bindings,
    pub ranges: HashMap<String, i64>,
}

/// Which module the CPU backend runs: the generated one, or the one after the standard
/// pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Raw,
    Optimised,
}

/// How the CPU backend runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuInput {
    pub which: Which,
    /// The session's threads.
    pub threads: usize,
}

/// The kind of a failure; the minimiser keeps the kind while it shrinks a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Verifier, text round trip or passes.
    Static,
    /// The interpreter gives other results (or fails) on the optimised module.
    Passes,
    /// The CPU backend fails to build or run a module the interpreter runs. Carries the
    /// shape of the error message.
    CpuError(String),
    /// The CPU backend panics.
    CpuPanic,
    /// The CPU backend's outputs differ from the interpreter's.
    Mismatch,
    /// The CPU backend's outputs depend on the number of threads (sessions promise the same
    /// bits whatever the number).
    ThreadDependent,
}

#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

pub enum Outcome {
    Pass,
    /// The interpreter rejects the generated program (not a finding).
    Skip(String),
    Fail(Failure),
}

fn fail(kind: Kind, message: String) -> Outcome {
    Outcome::Fail(Failure { kind, message })
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}
static HOOK: Once = Once::new();

/// Runs `f`, turning a panic into `Err(message)` without printing it.
pub fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    HOOK.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                prev(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    r.map_err(|e| {
        if let Some(s) = e.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = e.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic without a message".to_string()
        }
    })
}

/// Verifies `m`, checks print → parse → print, runs the standard pipeline verifying after
/// every pass and checks the round trip again. Returns the optimised module.
pub fn static_checks(m: &Module) -> Result<Module, String> {
    fn round_trip(m: &Module, stage: &str) -> Result<(), String> {
        mlc_ir::verify_module(m).map_err(|e| format!("{stage}: does not verify: {e:?}"))?;
        let text = mlc_ir::print_module(m);
        let back = mlc_ir::parse_module(&text).map_err(|e| format!("{stage}: the dump does not parse: {e}"))?;
        let again = mlc_ir::print_module(&back);
        if again != text {
            return Err(format!(
                "{stage}: print → parse → print changed the text:\n--- first\n{text}\n--- second\n{again}"
            ));
        }
        // `Literal`'s derived `PartialEq` compares f64s, so a module with a NaN constant never
        // equals itself (not even `m == m`); only the text is compared for those.
        if back != *m && !has_nan_literal(m) {
            return Err(format!("{stage}: parsing the dump gives another graph"));
        }
        mlc_ir::verify_module(&back).map_err(|e| format!("{stage}: the parsed module does not verify: {e:?}"))
    }
    round_trip(m, "generated")?;
    let mut opt = m.clone();
    let mut errors = Vec::new();
    let r = quietly(|| {
        passes::run_pipeline(&mut opt, None, |pass, m| {
            if let Err(e) = mlc_ir::verify_module(m) {
                errors.push(format!("after {pass}: does not verify: {e:?}"));
            }
        })
    });
    match r {
        Err(p) => return Err(format!("the pipeline panics: {p}")),
        Ok(Err(e)) => return Err(format!("the pipeline fails: {e}")),
        Ok(Ok(())) => {}
    }
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    round_trip(&opt, "optimised")?;
    Ok(opt)
}

/// True if some constant of the module (loop bodies included) has a NaN element.
pub fn has_nan_literal(m: &Module) -> bool {
    fn graph(g: &Graph) -> bool {
        g.dag.node_indices().any(|n| match &g.dag[n].op {
            Op::Const(lit) => matches!(&lit.data, LiteralData::Float(v) if v.iter().any(|x| x.is_nan())),
            Op::Loop(l) => graph(&l.body),
            _ => false,
        })
    }
    m.functions.iter().any(|f| graph(&f.graph))
}

type Outputs = Vec<(String, Tensor)>;

fn interpret(m: &Module, weights: &Weights, inputs: &[(String, Tensor)]) -> Result<Outputs, String> {
    match quietly(|| interp::run(m, ENTRY, weights, inputs, &RunOptions::default())) {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(e.to_string()),
        Err(p) => Err(format!("the interpreter panics: {p}")),
    }
}

/// The shape of an error message, for telling failures apart: numbers become `#` and what is
/// between brackets is dropped (`a window of # exceeds axis # of i##[]`).
fn error_shape(e: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in e.chars() {
        match c {
            '[' => {
                depth += 1;
                out.push(c);
            }
            ']' => {
                depth -= 1;
                out.push(c);
            }
            _ if depth > 0 => {}
            c if c.is_ascii_digit() => {
                if !out.ends_with('#') {
                    out.push('#');
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// What the CPU backend gives: outputs, outputs of a 1-thread session of the same model (when
/// `threads > 1`), or an error (its shape for [`Kind::CpuError`], and its message).
type CpuResult = Result<(Outputs, Option<Outputs>), (String, String)>;

fn run_cpu(m: &Module, weights: &Weights, inputs: &[(String, Tensor)], threads: usize) -> Result<CpuResult, String> {
    let err = |what: &str, e: mlc_runtime::RuntimeError| {
        let msg = format!("{what}: {e}");
        (error_shape(&msg), msg)
    };
    quietly(|| {
        let mut model = Model::from_module(m.clone()).map_err(|e| err("Model::from_module", e))?;
        model.set_weights(weights.clone());
        let mut session = model.session().map_err(|e| err("Model::session", e))?;
        session.set_threads(threads);
        let out = session.run(ENTRY, inputs).map_err(|e| err("Session::run", e))?;
        if threads == 1 {
            return Ok((out, None));
        }
        let mut single = model.session().map_err(|e| err("Model::session", e))?;
        single.set_threads(1);
        let one = single
            .run(ENTRY, inputs)
            .map_err(|e| err("Session::run (1 thread)", e))?;
        Ok((out, Some(one)))
    })
}

/// Bit-for-bit equality of two runs' outputs (NaNs equal when their bits are).
fn same_bits(a: &Outputs, b: &Outputs) -> Result<(), String> {
    for ((na, ta), (_, tb)) in a.iter().zip(b) {
        let same = ta.dtype() == tb.dtype()
            && ta.shape() == tb.shape()
            && match ta.dtype() {
                DType::F32 | DType::F16 | DType::BF16 => {
                    let (x, y) = (ta.to_f32_vec(), tb.to_f32_vec());
                    x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits())
                }
                DType::Bool => ta.to_bool_vec() == tb.to_bool_vec(),
                _ => ta.to_i64_vec() == tb.to_i64_vec(),
            };
        if !same {
            return Err(format!(
                "output `{na}`:\n  several threads: {}\n  one thread:      {}",
                show(ta),
                show(tb)
            ));
        }
    }
    Ok(())
}

/// The weights and inputs of a module.
pub fn data(m: &Module, env: &Env) -> Result<(Weights, Outputs), String> {
    let weights = Weights::from_tensors(m, init_weights(m, env.seed)).map_err(|e| format!("weights: {e:?}"))?;
    let f = m.function(ENTRY).ok_or("no entry point")?;
    let inputs =
        init_inputs_with_ranges(f, &env.bindings, &env.ranges, env.seed).map_err(|e| format!("inputs: {e}"))?;
    Ok((weights, inputs))
}

/// The full check of one module: static checks, the interpreter on the module and on its
/// optimised form, and (when `cpu` is given) the CPU backend.
pub fn check(m: &Module, env: &Env, cpu: Option<CpuInput>) -> Outcome {
    let opt = match static_checks(m) {
        Ok(o) => o,
        Err(e) => return fail(Kind::Static, e),
    };
    let (weights, inputs) = match data(m, env) {
        Ok(d) => d,
        Err(e) => return Outcome::Skip(e),
    };
    let reference = match interpret(m, &weights, &inputs) {
        Ok(o) => o,
        Err(e) => return Outcome::Skip(e),
    };
    let g = &m.function(ENTRY).expect("entry").graph;
    match interpret(&opt, &weights, &inputs) {
        Err(e) => {
            return fail(
                Kind::Passes,
                format!("the interpreter fails on the optimised module (not on the generated one): {e}"),
            );
        }
        Ok(o) => {
            if let Err(e) = compare(g, &reference, &o) {
                return fail(
                    Kind::Passes,
                    format!("the optimised module computes other values than the generated one:\n{e}"),
                );
            }
        }
    }
    let Some(which) = cpu else {
        return Outcome::Pass;
    };
    let target = if which.which == Which::Raw { m } else { &opt };
    match run_cpu(target, &weights, &inputs, which.threads) {
        Err(p) => fail(Kind::CpuPanic, format!("the CPU backend panics ({which:?}): {p}")),
        Ok(Err((shape, e))) => fail(
            Kind::CpuError(shape),
            format!("the CPU backend fails where the interpreter does not ({which:?}): {e}"),
        ),
        Ok(Ok((o, one))) => match compare(g, &reference, &o) {
            Err(e) => fail(
                Kind::Mismatch,
                format!("the CPU backend ({which:?}) disagrees with the interpreter:\n{e}"),
            ),
            Ok(()) => match one.map(|one| same_bits(&o, &one)) {
                Some(Err(e)) => fail(
                    Kind::ThreadDependent,
                    format!("the CPU backend ({which:?}) gives other bits with one thread:\n{e}"),
                ),
                _ => Outcome::Pass,
            },
        },
    }
}

/// True if `v` is an RNG value, possibly moved around (its bits must match exactly).
fn is_rng(g: &Graph, mut v: Value) -> bool {
    loop {
        let node = g.node(v.node);
        match &node.op {
            Op::RngUniform { .. } => return true,
            Op::Reshape(_) | Op::Permute(_) | Op::Expand(_) | Op::Slice { .. } => v = g.operands(v.node)[0],
            _ => return false,
        }
    }
}

/// Compares named outputs `b` against the reference `a`.
pub fn compare(g: &Graph, a: &Outputs, b: &Outputs) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} outputs instead of {}", b.len(), a.len()));
    }
    let mut problems = Vec::new();
    for (k, ((na, ta), (nb, tb))) in a.iter().zip(b).enumerate() {
        if na != nb {
            problems.push(format!("output {k} is named `{nb}` instead of `{na}`"));
            continue;
        }
        if ta.dtype() != tb.dtype() || ta.shape() != tb.shape() {
            problems.push(format!(
                "output `{na}`: {} instead of {}",
                tb.type_string(),
                ta.type_string()
            ));
            continue;
        }
        let bit_exact = g.outputs.get(k).is_some_and(|(_, v)| is_rng(g, *v));
        let bad = first_difference(ta, tb, bit_exact);
        if let Some((i, detail)) = bad {
            problems.push(format!(
                "output `{na}` ({}{}): element {i}: {detail}\n  interpreter: {}\n  cpu:         {}",
                ta.type_string(),
                if bit_exact { ", RNG: bit-exact" } else { "" },
                show(ta),
                show(tb)
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn first_difference(a: &Tensor, b: &Tensor, bit_exact: bool) -> Option<(usize, String)> {
    match a.dtype() {
        DType::F32 | DType::F16 | DType::BF16 => {
            let rtol = if a.dtype() == DType::F32 { RTOL } else { HALF_RTOL };
            let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
            let mut worst: Option<(usize, f64)> = None;
            for (i, (&p, &q)) in x.iter().zip(&y).enumerate() {
                let same = (p.is_nan() && q.is_nan()) || p == q;
                let err = if same {
                    0.0
                } else if bit_exact || !p.is_finite() || !q.is_finite() {
                    f64::INFINITY
                } else {
                    (p - q).abs() / p.abs().max(1.0)
                };
                if err > rtol && worst.is_none_or(|(_, w)| err > w) {
                    worst = Some((i, err));
                }
            }
            worst.map(|(i, err)| {
                (
                    i,
                    format!(
                        "interpreter {:e}, cpu {:e} (relative error {err:e} > {rtol:e})",
                        x[i], y[i]
                    ),
                )
            })
        }
        DType::Bool => {
            let (x, y) = (a.to_bool_vec(), b.to_bool_vec());
            let i = x.iter().zip(&y).position(|(p, q)| p != q)?;
            Some((i, format!("interpreter {}, cpu {}", x[i], y[i])))
        }
        _ => {
            let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
            let i = x.iter().zip(&y).position(|(p, q)| p != q)?;
            Some((i, format!("interpreter {}, cpu {}", x[i], y[i])))
        }
    }
}

/// A tensor's type and (up to 48) elements.
pub fn show(t: &Tensor) -> String {
    const MAX: usize = 48;
    let n = t.numel();
    let items: Vec<String> = match t.dtype() {
        DType::Bool => t
            .to_bool_vec()
            .iter()
            .take(MAX)
            .map(|b| u8::from(*b).to_string())
            .collect(),
        d if d.is_int() => t.to_i64_vec().iter().take(MAX).map(|v| v.to_string()).collect(),
        _ => t.to_f32_vec().iter().take(MAX).map(|v| format!("{v:?}")).collect(),
    };
    let more = if n > MAX {
        format!(", … ({} more)", n - MAX)
    } else {
        String::new()
    };
    format!("{} [{}{more}]", t.type_string(), items.join(", "))
}
