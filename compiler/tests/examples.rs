//! Every example under `examples/`: it lowers, verifies after every pass, round-trips through the
//! IR text form at every stage (print → parse → print is the identity), matches its reviewed IR
//! snapshot at every stage and its reviewed fused plan (kernels and steps), and every entry point
//! runs through the reference interpreter and the CPU backend on seeded random weights and inputs,
//! which agree.

use std::path::{Path, PathBuf};

use mlc_compiler::driver::compile_file;
use mlc_compiler::example::Example;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::{Module, passes};
use mlc_runtime::Weights;

mod common;
use common::interpreter_and_cpu;

/// Tests in this file read paths relative to the workspace root, so that origins printed in the
/// IR (`examples/x/model.dsl:3:5`) are the same on every machine.
fn at_workspace_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    std::env::set_current_dir(root).expect("cd to the workspace root");
}

/// `examples/NAME` folders that hold a `model.dsl`, sorted.
fn example_dirs() -> Vec<PathBuf> {
    at_workspace_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("examples")
        .expect("examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("model.dsl").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no examples found");
    dirs
}

/// The hyperparameter overrides of the example's `[set]` table (the configuration its
/// snapshots and runs use).
fn example_options(dir: &Path) -> LowerOptions {
    let ex = Example::load(dir).unwrap_or_else(|e| panic!("{e}"));
    LowerOptions {
        overrides: ex.set.iter().map(|(k, v)| (k.clone(), v.to_string())).collect(),
        entries: vec![],
    }
}

fn name_of(dir: &Path) -> String {
    dir.file_name().expect("folder name").to_string_lossy().into_owned()
}

fn check_stage(example: &str, stage: &str, m: &Module) {
    if let Err(errs) = mlc_ir::verify_module(m) {
        panic!("{example} after {stage} does not verify: {errs:?}");
    }
    let text = mlc_ir::print_module(m);
    let back =
        mlc_ir::parse_module(&text).unwrap_or_else(|e| panic!("{example} after {stage}: the dump does not parse: {e}"));
    assert_eq!(
        mlc_ir::print_module(&back),
        text,
        "{example} after {stage}: print → parse → print changed the text"
    );
    assert_eq!(
        &back, m,
        "{example} after {stage}: parsing the dump gives another graph"
    );
    insta::with_settings!({snapshot_path => "../../snapshots/ir", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!(format!("{example}@{stage}"), text);
    });
}

#[test]
fn every_example_verifies_round_trips_and_matches_its_snapshots() {
    for dir in example_dirs() {
        let name = name_of(&dir);
        let c = compile_file(&dir.join("model.dsl"), &example_options(&dir))
            .unwrap_or_else(|e| panic!("example {name} does not compile:\n{e}"));
        let mut m = c.module;
        check_stage(&name, "lower", &m);
        passes::run_pipeline(&mut m, None, |stage, m| check_stage(&name, stage, m)).expect("the standard pipeline");
        // The fused plan: the kernels (Kernel IR) and every entry's steps.
        let plan = mlc_sched::plan_module(&m).unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::with_settings!({snapshot_path => "../../snapshots/plan", prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(format!("{name}@fuse"), mlc_ir::print_plan(&plan));
        });
    }
}

#[test]
fn dumps_are_deterministic() {
    for dir in example_dirs() {
        let once = compile_file(&dir.join("model.dsl"), &example_options(&dir))
            .expect("compiles")
            .module;
        let twice = compile_file(&dir.join("model.dsl"), &example_options(&dir))
            .expect("compiles")
            .module;
        assert_eq!(
            mlc_ir::print_module(&once),
            mlc_ir::print_module(&twice),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn every_example_entry_runs_in_the_interpreter_and_on_the_cpu_backend_alike() {
    for dir in example_dirs() {
        let name = name_of(&dir);
        let ex = Example::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut m = compile_file(&ex.model_path(), &example_options(&dir))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .module;
        passes::run_pipeline(&mut m, None, |_, _| {}).expect("pipeline");
        assert!(
            m.function(&ex.entry).is_some(),
            "{name}: example.toml names a missing entry `{}`",
            ex.entry
        );
        let weights = Weights::from_tensors(&m, mlc_runtime::init_weights(&m, ex.seed)).expect("random weights bind");
        let mut model = mlc_runtime::Model::from_module(m.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        model.set_weights(weights.clone());
        let mut session = model.session().expect("a session");
        for f in &m.functions {
            let inputs = mlc_runtime::init_inputs_with_ranges(f, &ex.bind, &ex.ranges, ex.seed).unwrap_or_else(|e| {
                panic!(
                    "{name}.{}: example.toml's [bind] does not cover the inputs: {e}",
                    f.name
                )
            });
            // The CPU backend agrees with the interpreter: floats to 1e-5 relative to the
            // tensor's scale, integers and bools exactly.
            let what = format!("{name}.{}", f.name);
            let outputs = interpreter_and_cpu(&m, &weights, &mut session, &f.name, &inputs, &what);
            for (out_name, want, got) in &outputs {
                if want.dtype().is_float() {
                    let (w, g) = (want.to_f64_vec(), got.to_f64_vec());
                    let scale = w.iter().filter(|x| x.is_finite()).fold(1.0f64, |m, x| m.max(x.abs()));
                    for (i, (a, b)) in w.iter().zip(&g).enumerate() {
                        let same = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * scale;
                        assert!(
                            same,
                            "{name}.{} output {out_name}[{i}]: interpreter {a}, cpu {b}",
                            f.name
                        );
                    }
                } else {
                    assert_eq!(
                        want.to_i64_vec(),
                        got.to_i64_vec(),
                        "{name}.{} output {out_name}",
                        f.name
                    );
                }
            }
            assert_eq!(outputs.len(), f.graph.outputs.len(), "{name}.{}", f.name);
            for ((out_name, t, _), ty) in outputs.iter().zip(f.graph.output_types()) {
                let want: Vec<usize> = ty
                    .shape
                    .iter()
                    .map(|d| d.eval(&ex.bind).expect("bound") as usize)
                    .collect();
                assert_eq!(t.shape(), &want[..], "{name}.{} output {out_name}", f.name);
                assert_eq!(t.dtype(), ty.dtype, "{name}.{} output {out_name}", f.name);
            }
        }
    }
}

/// The arena layout of every plan (and loop body) of every example, with its `example.toml`
/// bindings: buffers alive at the same step never share bytes (unless one is written in place
/// over the other), and the arena needs at most 1.2 times the largest live set.
#[test]
fn every_example_plan_has_a_sound_compact_arena() {
    for dir in example_dirs() {
        let name = name_of(&dir);
        let ex = Example::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut m = compile_file(&ex.model_path(), &example_options(&dir))
            .expect("compiles")
            .module;
        passes::run_pipeline(&mut m, None, |_, _| {}).expect("pipeline");
        let plan = mlc_sched::plan_module(&m).expect("plans");
        let mut stack: Vec<&mlc_ir::FunctionPlan> = plan.functions.iter().collect();
        while let Some(f) = stack.pop() {
            stack.extend(f.steps.iter().filter_map(|s| match s {
                mlc_ir::Step::Loop { body, .. } => Some(body.as_ref()),
                _ => None,
            }));
            let sizes: Vec<usize> = f
                .bufs
                .iter()
                .map(|b| {
                    let n: i64 = b.ty.shape.iter().map(|d| d.eval(&ex.bind).unwrap_or(3)).product();
                    n as usize * b.ty.dtype.size_bytes()
                })
                .collect();
            let layout = mlc_sched::memory::plan_arena(&plan, f, &sizes);
            // What the runtime lays out (without the statistics) is this layout.
            assert_eq!(
                mlc_sched::memory::place_arena(&plan, f, &sizes),
                (layout.offsets.clone(), layout.peak),
                "{name}/{}",
                f.name
            );
            let life = mlc_sched::memory::lifetimes(&plan, f);
            for a in 0..f.bufs.len() {
                for b in a + 1..f.bufs.len() {
                    let (Some(la), Some(lb), Some(oa), Some(ob)) =
                        (life[a], life[b], layout.offsets[a], layout.offsets[b])
                    else {
                        continue;
                    };
                    let same_block = oa == ob;
                    let live_together = la.first <= lb.last && lb.first <= la.last;
                    let bytes_overlap = oa < ob + sizes[b].max(1) && ob < oa + sizes[a].max(1);
                    assert!(
                        same_block || !(live_together && bytes_overlap),
                        "{name}/{}: buffers b{a} and b{b} are live together and overlap",
                        f.name
                    );
                }
            }
            assert!(
                layout.peak as f64 <= 1.2 * layout.max_live as f64,
                "{name}/{}: arena {} B for a largest live set of {} B",
                f.name,
                layout.peak,
                layout.max_live
            );
        }
    }
}
