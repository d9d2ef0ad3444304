//! Bounded resources: the limits of `RunOptions` (elements per value, arena bytes, trips per
//! loop) through the library on both backends and through `mlc run`, and a dim bound to 10^12
//! failing cleanly at bind time without an attempt at the allocation.

mod common;

use std::process::Output;

use common::{mlc, tiny_path};

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::Module;
use mlc_runtime::{Model, RunOptions, RuntimeError, Tensor, Weights, init_weights, safetensors_io};

fn tiny() -> Module {
    let text = std::fs::read_to_string(tiny_path()).unwrap();
    compile_source_optimized("model.dsl", &text, &LowerOptions::default()).unwrap()
}

/// Runs `entry` on the interpreter and on the CPU backend with `opts`.
fn run_both(
    module: &Module,
    entry: &str,
    inputs: &[(String, Tensor)],
    opts: &RunOptions,
) -> [Result<Vec<(String, Tensor)>, RuntimeError>; 2] {
    let weights = Weights::from_tensors(module, init_weights(module, 0)).unwrap();
    let interp = mlc_runtime::run(module, entry, &weights, inputs, opts);
    let mut model = Model::from_module(module.clone()).unwrap();
    model.set_weights(weights);
    let mut session = model.session().unwrap();
    session.set_threads(1);
    session.set_options(opts.clone());
    let cpu = session.run(entry, inputs);
    [interp, cpu]
}

fn x(shape: &[usize]) -> Vec<(String, Tensor)> {
    let n = shape.iter().product();
    vec![("x".to_string(), Tensor::from_f32(shape, vec![0.5; n]))]
}

/// `B` bound to 10^12 by an empty input (`[10^12, 0, 8]` holds no element, so it can be
/// built): refused when the dims are bound, naming the input and the limit.
#[test]
fn a_dim_of_ten_to_the_twelve_fails_at_bind_time() {
    let module = tiny();
    let inputs = vec![("x".to_string(), Tensor::from_f32(&[1_000_000_000_000, 0, 8], vec![]))];
    for (backend, result) in ["interp", "cpu"]
        .iter()
        .zip(run_both(&module, "forward", &inputs, &RunOptions::default()))
    {
        match result {
            Err(RuntimeError::TooLarge { shape, limit, .. }) => {
                assert_eq!(shape, vec![1_000_000_000_000, 0, 8], "{backend}");
                assert_eq!(limit, RunOptions::DEFAULT_MAX_ELEMENTS, "{backend}");
            }
            other => panic!("{backend}: expected TooLarge, got {other:?}"),
        }
    }
}

#[test]
fn max_elements_names_the_value_and_the_limit() {
    let module = tiny();
    let opts = RunOptions {
        max_elements: 40,
        ..RunOptions::default()
    };
    // x: [2, 3, 8] = 48 elements is over the limit: refused at bind time.
    for result in run_both(&module, "forward", &x(&[2, 3, 8]), &opts) {
        let err = result.unwrap_err();
        assert!(matches!(err, RuntimeError::TooLarge { limit: 40, .. }), "{err}");
        assert!(err.to_string().contains("`x`"), "{err}");
    }
    // x: [1, 2, 8] = 16 elements fits, the hidden layer [1, 2, 16] = 32 too; a limit of 20
    // stops the run at the first op whose result is larger, which the message names.
    let opts = RunOptions {
        max_elements: 20,
        ..RunOptions::default()
    };
    for result in run_both(&module, "forward", &x(&[1, 2, 8]), &opts) {
        let err = result.unwrap_err();
        assert!(matches!(err, RuntimeError::TooLarge { limit: 20, .. }), "{err}");
        assert!(err.to_string().contains("exceeds the limit of 20 elements"), "{err}");
    }
    let [interp, cpu] = run_both(&module, "forward", &x(&[1, 2, 8]), &RunOptions::default());
    assert_eq!(interp.unwrap().len(), cpu.unwrap().len());
}

#[test]
fn max_loop_trips_names_the_loop_and_the_limit() {
    let module = tiny();
    // `count` declares 5 trips (stopping after 3): a limit of 5 lets it run, 4 does not.
    let ok = RunOptions {
        max_loop_trips: 5,
        ..RunOptions::default()
    };
    for result in run_both(&module, "count", &x(&[2, 8]), &ok) {
        assert!(result.is_ok(), "{result:?}");
    }
    let tight = RunOptions {
        max_loop_trips: 4,
        ..RunOptions::default()
    };
    for result in run_both(&module, "count", &x(&[2, 8]), &tight) {
        let err = result.unwrap_err();
        assert!(
            matches!(err, RuntimeError::TripLimit { trips: 5, limit: 4, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.starts_with("`loop` at `"), "{msg}");
        assert!(msg.contains("model.dsl:"), "the message names the loop's source: {msg}");
    }
}

#[test]
fn max_arena_bytes_is_checked_before_the_arena_grows() {
    let module = tiny();
    let weights = Weights::from_tensors(&module, init_weights(&module, 0)).unwrap();
    let mut model = Model::from_module(module).unwrap();
    model.set_weights(weights);
    let mut session = model.session().unwrap();
    session.set_threads(1);
    session.run("forward", &x(&[2, 3, 8])).unwrap();
    let needed = session.arena_bytes();
    assert!(needed > 0);

    let mut session = model.session().unwrap();
    session.set_options(RunOptions {
        max_arena_bytes: needed - 1,
        ..RunOptions::default()
    });
    let err = session.run("forward", &x(&[2, 3, 8])).unwrap_err();
    match &err {
        RuntimeError::ArenaTooLarge { entry, bytes, limit } => {
            assert_eq!((entry.as_str(), *bytes, *limit), ("forward", needed, needed - 1));
        }
        other => panic!("expected ArenaTooLarge, got {other}"),
    }
    assert_eq!(session.arena_bytes(), 0, "nothing was allocated");
    // Smaller shapes fit in the same limit.
    session.run("forward", &x(&[1, 1, 8])).unwrap();
    assert!(session.arena_bytes() < needed);
}

// ---------------------------------------------------------------- `mlc run`

/// Asserts exit status 1 and returns stderr.
#[track_caller]
fn user_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{err}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!err.contains("panicked") && !err.contains("internal error"), "{err}");
    err
}

#[test]
fn mlc_run_with_a_dim_of_ten_to_the_twelve_fails_cleanly() {
    let tiny = tiny_path();
    for backend in ["interp", "cpu"] {
        // Random inputs for B = 10^12: refused before they are generated.
        let o = mlc([
            "run".as_ref(),
            tiny.as_os_str(),
            "--bind".as_ref(),
            "B=1000000000000,T=3".as_ref(),
            "--backend".as_ref(),
            backend.as_ref(),
        ]);
        let err = user_error(&o);
        assert!(
            err.contains("`x`") && err.contains("exceeds the limit of 1073741824 elements"),
            "{err}"
        );
    }
    // An inputs file that binds B = 10^12 (an empty tensor): refused by each backend.
    let dir = std::env::temp_dir().join(format!("mlc-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inputs = dir.join("huge.safetensors");
    let huge = Tensor::from_f32(&[1_000_000_000_000, 0, 8], vec![]);
    safetensors_io::save(&inputs, &[("x".to_string(), huge)]).unwrap();
    for backend in ["interp", "cpu"] {
        let o = mlc([
            "run".as_ref(),
            tiny.as_os_str(),
            "--inputs".as_ref(),
            inputs.as_os_str(),
            "--backend".as_ref(),
            backend.as_ref(),
        ]);
        let err = user_error(&o);
        assert!(
            err.contains("[1000000000000, 0, 8] exceeds the limit"),
            "{backend}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn mlc_run_limit_flags() {
    let tiny = tiny_path();
    let run = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), tiny.as_os_str()];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        mlc(args)
    };
    for backend in ["interp", "cpu"] {
        let err = user_error(&run(&[
            "--bind",
            "B=2,T=3",
            "--max-elements",
            "20",
            "--backend",
            backend,
        ]));
        assert!(err.contains("exceeds the limit of 20 elements"), "{backend}: {err}");
        let err = user_error(&run(&[
            "--entry",
            "count",
            "--bind",
            "B=2",
            "--max-loop-trips",
            "4",
            "--backend",
            backend,
        ]));
        assert!(
            err.contains("5 trips exceed the limit of 4 trips per loop"),
            "{backend}: {err}"
        );
    }
    let err = user_error(&run(&[
        "--bind",
        "B=2,T=3",
        "--max-arena-bytes",
        "64",
        "--backend",
        "cpu",
    ]));
    assert!(
        err.contains("`forward`: the run needs an arena of") && err.contains("more than the limit of 64"),
        "{err}"
    );
    let ok = run(&["--bind", "B=2,T=3", "--max-arena-bytes", "1000000", "--backend", "cpu"]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
}
