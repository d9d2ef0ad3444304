//! Differential fuzzing of the whole compile pipeline: random well-typed Graph IR programs
//! (the generator of `compiler/tests/random_graphs`, included here unchanged) must verify,
//! round-trip through the text form, survive the standard passes with the interpreter's
//! results, and run on the CPU backend with the interpreter's results (f32 within a relative
//! error of 1e-5, integers and bools exactly, RNG bit for bit, the same bits whatever the number
//! of threads). Any failure of `check` (the property test's own check) is a finding: the target
//! panics with the program, a minimised program and both outputs.
//!
//! The bytes drive the generator's choices:
//!
//! - byte 0: how the CPU backend runs the case: bit 0 set = the generated module (with dead
//!   code, duplicates and unfolded constants), clear = the optimised one; `1 + (byte >> 1) % 3`
//!   threads;
//! - bytes 1..9: the seed (u64, little endian; missing bytes are zeros), which also seeds the
//!   weights and inputs;
//! - byte 9 + k perturbs the k-th random draw of the generator (see [`rng`]); a zero byte, or
//!   no byte, leaves it as the seed makes it. So the input `[c, seed as 8 LE bytes]` is exactly
//!   the case `MLC_RANDOM_SEED=seed` of the property test, and a mutation of a later byte changes
//!   one choice (an op, an operand, a shape) and what follows from it.
//!
//! A reported program starts with a `// random-graphs ...` header line; saved to a file it
//! reruns with `MLC_RANDOM_MODULE=FILE cargo test -p mlc-compiler --test random_graphs`.

#![no_main]

#[allow(dead_code)]
#[path = "../../compiler/tests/random_graphs/check.rs"]
mod check;
#[allow(dead_code)]
#[path = "../../compiler/tests/random_graphs/generate.rs"]
mod generate;
#[allow(dead_code)]
#[path = "../../compiler/tests/random_graphs/minimise.rs"]
mod minimise;

/// The generator's PRNG (`generate.rs` reaches it as `super::rng::Rng`); [`rng::set_bytes`] lets
/// the fuzzer's bytes perturb its draws.
#[allow(dead_code)]
#[path = "../../compiler/tests/random_graphs/rng.rs"]
mod rng;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use check::{CpuInput, Env, Outcome, Which};
use libfuzzer_sys::fuzz_target;

/// The minimiser's budget (tries, time): well under the 20 s per input of `scripts/fuzz.sh`.
const MINIMISE_TRIES: usize = 400;
const MINIMISE_TIME: Duration = Duration::from_secs(8);

/// The header line of a reported module, as `random_graphs.rs` reads it (`MLC_RANDOM_MODULE`).
fn header(env: &Env, cpu: CpuInput) -> String {
    let pairs = |m: &HashMap<String, i64>| {
        let b: BTreeMap<&String, &i64> = m.iter().collect();
        b.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(",")
    };
    format!(
        "// random-graphs seed={} dims={} ranges={} cpu={}:{}\n",
        env.seed,
        pairs(&env.bindings),
        pairs(&env.ranges),
        if cpu.which == Which::Raw { "raw" } else { "optimised" },
        cpu.threads
    )
}

/// The plan the CPU backend runs for `m`.
fn plan(m: &mlc_ir::Module, cpu: CpuInput) -> String {
    let target = match cpu.which {
        Which::Raw => Ok(m.clone()),
        Which::Optimised => check::static_checks(m),
    };
    match target.map(|t| mlc_sched::plan_module(&t)) {
        Ok(Ok(p)) => mlc_ir::print_plan(&p),
        Ok(Err(e)) => format!("(planning fails: {e})\n"),
        Err(e) => format!("(no optimised module: {e})\n"),
    }
}

fuzz_target!(|data: &[u8]| {
    let config = data.first().copied().unwrap_or(0);
    let mut seed = [0u8; 8];
    let given = data.get(1..).unwrap_or(&[]);
    let n = given.len().min(8);
    seed[..n].copy_from_slice(&given[..n]);
    let seed = u64::from_le_bytes(seed);
    rng::set_bytes(data.get(9..).unwrap_or(&[]));
    let case = generate::generate(seed);
    let cpu = CpuInput {
        which: if config & 1 == 1 && !generate::avoid("raw-cpu") {
            Which::Raw
        } else {
            Which::Optimised
        },
        threads: 1 + usize::from(config >> 1) % 3,
    };
    let env = Env {
        seed: case.seed,
        bindings: case.bindings.clone(),
        ranges: case.ranges.clone(),
    };
    let failure = match check::check(&case.module, &env, Some(cpu)) {
        Outcome::Pass | Outcome::Skip(_) => return,
        Outcome::Fail(f) => f,
    };
    // Shrink the program while it fails the same way, then report both.
    let kind = failure.kind.clone();
    let mut fails = |m: &mlc_ir::Module| matches!(check::check(m, &env, Some(cpu)), Outcome::Fail(f) if f.kind == kind);
    let (small, tries) = minimise::minimise(&case.module, &mut fails, MINIMISE_TRIES, MINIMISE_TIME);
    let small_message = match check::check(&small, &env, Some(cpu)) {
        Outcome::Fail(f) => f.message,
        _ => "(the minimised module no longer fails)".to_string(),
    };
    let head = header(&env, cpu);
    panic!(
        "compile_diff: {kind:?} (seed {seed}, CPU backend {cpu:?})\n\
         --- failure\n{message}\n\
         --- module\n{head}{text}\
         --- minimised module ({before} -> {after} nodes, {tries} tries)\n{head}{small_text}\
         --- plan of the minimised module\n{small_plan}\
         --- failure of the minimised module\n{small_message}\n",
        message = failure.message,
        text = mlc_ir::print_module(&case.module),
        before = minimise::size(&case.module.functions[0].graph),
        after = minimise::size(&small.functions[0].graph),
        small_text = mlc_ir::print_module(&small),
        small_plan = plan(&small, cpu),
    );
});
