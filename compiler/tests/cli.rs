//! The `mlc` command end to end: exit statuses (0 ok, 1 user error, 2 internal error), messages,
//! deterministic IR dumps, and the weights/inputs/run/build/package round trip on
//! `examples/tiny`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{crate_dir, mlc, tiny_path};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit status, showing the output when it differs.
#[track_caller]
fn assert_status(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit status {code}\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A fresh, empty temporary folder for one test (removed when dropped).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mlc-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn check_accepts_the_tiny_example() {
    let o = mlc(["check".as_ref(), tiny_path().as_os_str()]);
    assert_status(&o, 0);
    assert!(stdout(&o).contains("ok: model Tiny"), "{}", stdout(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn check_reports_a_malformed_file_with_its_location() {
    let o = mlc(["check", "tests/diagnostics/unknown_name.dsl"]);
    assert_status(&o, 1);
    let err = stderr(&o);
    assert!(
        err.starts_with("tests/diagnostics/unknown_name.dsl:5:12: error: unknown name `hiden`"),
        "{err}"
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn check_reports_a_missing_file_clearly() {
    let o = mlc(["check", "tests/no/such/model.dsl"]);
    assert_status(&o, 1);
    let err = stderr(&o);
    assert!(err.starts_with("error: cannot read `tests/no/such/model.dsl`"), "{err}");
    assert!(err.contains("No such file"), "{err}");
    assert!(!err.contains("internal error") && !err.contains("panicked"), "{err}");
}

/// No user input may make `mlc` report an internal error (exit 2): every malformed program of
/// the diagnostics corpus is a plain user error.
#[test]
fn every_corpus_file_is_a_user_error() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(crate_dir().join("tests/diagnostics"))
        .expect("the corpus folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dsl"))
        .collect();
    files.sort();
    assert!(files.len() >= 45, "only {} corpus files", files.len());
    let mut bad = Vec::new();
    for f in &files {
        let rel = Path::new("tests/diagnostics").join(f.file_name().expect("a name"));
        let o = mlc(["check".as_ref(), rel.as_os_str()]);
        let err = stderr(&o);
        let located = err.starts_with(&format!("{}:", rel.display()));
        if o.status.code() != Some(1) || !located || err.contains("internal error") {
            bad.push(format!("{}: exit {:?}\n{err}", rel.display(), o.status.code()));
        }
    }
    assert!(
        bad.is_empty(),
        "{} corpus file(s) misbehaved:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn dump_ir_is_deterministic() {
    let model = tiny_path();
    let args = [
        "dump-ir".as_ref(),
        model.as_os_str(),
        "--after".as_ref(),
        "all".as_ref(),
    ];
    let a = mlc(args);
    let b = mlc(args);
    assert_status(&a, 0);
    assert_status(&b, 0);
    assert!(stdout(&a).contains("// ---- after lower ----"), "{}", stdout(&a));
    assert!(a.stdout == b.stdout, "two runs of `dump-ir --after all` differ");
}

#[test]
fn dumped_ir_parses_back_and_prints_identically() {
    let o = mlc([
        "dump-ir".as_ref(),
        tiny_path().as_os_str(),
        "--after".as_ref(),
        "dce".as_ref(),
    ]);
    assert_status(&o, 0);
    let text = stdout(&o);
    let module = mlc_ir::parse_module(&text).unwrap_or_else(|e| panic!("the dump does not parse: {e}\n{text}"));
    mlc_ir::verify_module(&module).unwrap_or_else(|e| panic!("the parsed dump does not verify: {e:?}"));
    assert_eq!(
        mlc_ir::print_module(&module),
        text,
        "printing the parsed dump changes it"
    );
}

#[test]
fn dump_ir_rejects_an_unknown_pass() {
    let o = mlc([
        "dump-ir".as_ref(),
        tiny_path().as_os_str(),
        "--after".as_ref(),
        "no-such-pass".as_ref(),
    ]);
    assert_status(&o, 1);
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
}

/// `init-weights`, `init-inputs`, `run`; then `build` a package and run it on the same files.
#[test]
fn weights_inputs_run_build_and_package_round_trip() {
    let tmp = TempDir::new("round-trip");
    let (weights, inputs, out, pkg, out_pkg) = (
        tmp.path("w.safetensors"),
        tmp.path("in.safetensors"),
        tmp.path("out.safetensors"),
        tmp.path("tiny.mlcpkg"),
        tmp.path("out2.safetensors"),
    );

    let o = mlc([
        "init-weights".as_ref(),
        tiny_path().as_os_str(),
        "-o".as_ref(),
        weights.as_os_str(),
    ]);
    assert_status(&o, 0);
    let w = mlc_runtime::safetensors_io::load(&weights).expect("the weights load");
    assert!(w.names().contains(&"inp.weight"), "{:?}", w.names());

    let o = mlc([
        "init-inputs".as_ref(),
        tiny_path().as_os_str(),
        "--bind".as_ref(),
        "B=2,T=3".as_ref(),
        "-o".as_ref(),
        inputs.as_os_str(),
    ]);
    assert_status(&o, 0);

    let run = |target: &Path, out: &Path| {
        mlc([
            "run".as_ref(),
            target.as_os_str(),
            "--weights".as_ref(),
            weights.as_os_str(),
            "--inputs".as_ref(),
            inputs.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
    };
    let o = run(&tiny_path(), &out);
    assert_status(&o, 0);
    let outputs = mlc_runtime::safetensors_io::load(&out).expect("the outputs load");
    let tensors = outputs.tensors().expect("the outputs decode");
    assert_eq!(tensors.len(), 1, "{:?}", outputs.names());
    assert_eq!(tensors[0].1.shape(), &[2, 3, 3]);

    let o = mlc([
        "build".as_ref(),
        tiny_path().as_os_str(),
        "-o".as_ref(),
        pkg.as_os_str(),
    ]);
    assert_status(&o, 0);
    let o = run(&pkg, &out_pkg);
    assert_status(&o, 0);
    let (a, b) = (
        std::fs::read(&out).expect("outputs"),
        std::fs::read(&out_pkg).expect("outputs"),
    );
    assert!(a == b, "running the package gives other outputs than running the .dsl");

    // A damaged package is refused as such, with exit status 1.
    let mut bytes = std::fs::read(&pkg).expect("the package");
    let at = bytes.len() - bytes.len() / 3;
    bytes[at] ^= 0x01;
    let damaged = tmp.path("damaged.mlcpkg");
    std::fs::write(&damaged, &bytes).expect("write");
    let o = run(&damaged, &tmp.path("out3.safetensors"));
    assert_status(&o, 1);
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
}

#[test]
fn weights_of_the_wrong_shape_are_refused() {
    let tmp = TempDir::new("wrong-shape");
    let (weights, inputs) = (tmp.path("w.safetensors"), tmp.path("in.safetensors"));
    // Weights for a narrower model (d = 4 instead of 8).
    let o = mlc([
        "init-weights".as_ref(),
        tiny_path().as_os_str(),
        "--set".as_ref(),
        "d=4".as_ref(),
        "-o".as_ref(),
        weights.as_os_str(),
    ]);
    assert_status(&o, 0);
    let o = mlc([
        "init-inputs".as_ref(),
        tiny_path().as_os_str(),
        "--bind".as_ref(),
        "B=1,T=2".as_ref(),
        "-o".as_ref(),
        inputs.as_os_str(),
    ]);
    assert_status(&o, 0);
    let o = mlc([
        "run".as_ref(),
        tiny_path().as_os_str(),
        "--weights".as_ref(),
        weights.as_os_str(),
        "--inputs".as_ref(),
        inputs.as_os_str(),
    ]);
    assert_status(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("inp.weight"), "{err}");
    assert!(
        err.contains("f32[16, 8]") && err.contains("f32[8, 4]"),
        "both shapes should be named:\n{err}"
    );
}

#[test]
fn unavailable_backend_is_a_user_error() {
    let o = mlc([
        "run".as_ref(),
        tiny_path().as_os_str(),
        "--backend".as_ref(),
        "cuda".as_ref(),
        "--bind".as_ref(),
        "B=1,T=1".as_ref(),
    ]);
    assert_status(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("backend `cuda` is not available"), "{err}");
}

/// `--backend cpu` gives the interpreter's outputs for the same seeded run (to 1e-5: the GEMM
/// sums in f32 in its own order, the interpreter in f64).
#[test]
fn cpu_backend_runs_like_the_interpreter() {
    let dir = std::env::temp_dir().join(format!("mlc-cli-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let run = |backend: &str| {
        let out = dir.join(format!("{backend}.safetensors"));
        let o = mlc([
            "run".as_ref(),
            tiny_path().as_os_str(),
            "--backend".as_ref(),
            backend.as_ref(),
            "--bind".as_ref(),
            "B=2,T=3".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        assert_status(&o, 0);
        mlc_runtime::safetensors_io::load(&out)
            .expect("outputs")
            .tensors()
            .expect("tensors")
    };
    let (cpu, interp) = (run("cpu"), run("interp"));
    assert_eq!(cpu.len(), interp.len());
    for ((n, a), (m, b)) in cpu.iter().zip(&interp) {
        assert_eq!((n, a.shape()), (m, b.shape()));
        for (x, y) in a.to_f64_vec().iter().zip(b.to_f64_vec()) {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{n}: cpu {x}, interp {y}");
        }
    }
}

/// Under `perf record` (which sets `PERF_BUILDID_DIR`) the JIT's functions appear in
/// `/tmp/perf-PID.map` under their kernels' names, one whole line each (the JIT compiles on one
/// thread then, so lines from several threads cannot interleave).
#[cfg(target_os = "linux")]
#[test]
fn jit_functions_are_named_for_perf() {
    let dir = TempDir::new("perf");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mlc"))
        .args(["run", "../examples/smollm2", "--backend", "cpu"])
        .current_dir(crate_dir())
        .env("PERF_BUILDID_DIR", dir.path("buildid"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mlc starts");
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let o = child.wait_with_output().expect("mlc runs");
    assert_status(&o, 0);
    let text = std::fs::read_to_string(&map).expect("the perf map was written");
    let _ = std::fs::remove_file(&map);
    let mut kernels = 0;
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert!(
            parts.len() == 3 && u64::from_str_radix(parts[0], 16).is_ok() && u64::from_str_radix(parts[1], 16).is_ok(),
            "a malformed perf map line: {line:?}"
        );
        kernels += usize::from(parts[2].starts_with("mlc_kernel_"));
    }
    // The 2-layer SmolLM2 compiles more than 8 distinct kernels (the threshold for compiling
    // on several threads), and its first is named after its first kernel.
    assert!(kernels > 8, "{kernels} named kernels in\n{text}");
    assert!(text.contains("mlc_kernel_0_step_"), "{text}");
}

/// Bad flags and values are user errors (exit 1) with a message, never internal errors.
#[test]
fn bad_flag_values_are_user_errors() {
    let t = tiny_path();
    let t = t.to_str().expect("a UTF-8 path");
    let cases: &[(&[&str], &str)] = &[
        (&["check", t, "--set", "nosuch=1"], "has no hyperparameter `nosuch`"),
        (&["check", t, "--set", "d=wide"], "bad value `wide`"),
        (&["check", t, "--set", "d"], "expected NAME=VALUE"),
        (&["run", t, "--bind", "B=x,T=1"], "bad size `x`"),
        (&["run", t, "--entry", "nosuch", "--bind", "B=1,T=1"], "nosuch"),
        (&["run", t], "needs a size for dim"),
        (&["run", "tests/no/such/package.mlcpkg"], "no/such/package.mlcpkg"),
    ];
    for (args, want) in cases {
        let o = mlc(*args);
        assert_status(&o, 1);
        let err = stderr(&o);
        assert!(
            err.contains(want),
            "`mlc {}`: expected `{want}` in:\n{err}",
            args.join(" ")
        );
        assert!(!err.contains("internal error"), "`mlc {}`:\n{err}", args.join(" "));
    }
}

/// `--check-numerics` names the first op that produces a NaN, with its source location.
#[test]
fn check_numerics_names_the_first_nan() {
    let dir = std::env::temp_dir().join(format!("mlc-cli-numerics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("nan.dsl");
    std::fs::write(
        &file,
        "model M {\n  entry f(x: f32[B]) {\n    let z = log(x * 0.0 - 1.0)\n    return z + 1.0\n  }\n}\n",
    )
    .expect("write model");
    let o = mlc([
        "run".as_ref(),
        file.as_os_str(),
        "--bind".as_ref(),
        "B=3".as_ref(),
        "--check-numerics".as_ref(),
    ]);
    assert_status(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("`log`") && err.contains("nan.dsl:3:13") && err.contains("NaN"),
        "{err}"
    );
    // Without the flag the run succeeds and the NaN reaches the output.
    let o = mlc(["run".as_ref(), file.as_os_str(), "--bind".as_ref(), "B=3".as_ref()]);
    assert_status(&o, 0);
}

/// `mlc bench` prints one JSON line: latencies, and the compile time with its phases, which
/// lie inside it (for a `.dsl` file: parse, lower, optimize, plan, codegen; for a package: load,
/// plan, codegen). Bad requests are user errors.
#[test]
fn bench_reports_compile_phases() {
    let tmp = TempDir::new("bench");
    let pkg = tmp.path("tiny.mlcpkg");
    let o = mlc([
        "build".as_ref(),
        tiny_path().as_os_str(),
        "-o".as_ref(),
        pkg.as_os_str(),
    ]);
    assert_status(&o, 0);
    for (target, phases) in [
        (tiny_path(), &["codegen", "lower", "optimize", "parse", "plan"][..]),
        (pkg.clone(), &["codegen", "load", "plan"][..]),
    ] {
        let o = mlc([
            "bench".as_ref(),
            target.as_os_str(),
            "--bind".as_ref(),
            "B=2".as_ref(),
            "--bind".as_ref(),
            "T=3".as_ref(),
            "--iters".as_ref(),
            "3".as_ref(),
        ]);
        assert_status(&o, 0);
        let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON line");
        assert_eq!(line["iters"], 3, "{line}");
        let ms = |v: &serde_json::Value| v.as_f64().unwrap_or(-1.0);
        assert!(
            ms(&line["min_ms"]) > 0.0 && ms(&line["min_ms"]) <= ms(&line["median_ms"]),
            "{line}"
        );
        let got = line["compile_phases_ms"].as_object().expect("compile_phases_ms");
        let names: Vec<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(names, phases, "{line}");
        let sum: f64 = got.values().map(ms).sum();
        assert!(got.values().all(|v| ms(v) >= 0.0), "{line}");
        assert!(sum <= ms(&line["compile_ms"]), "phases sum to {sum}: {line}");
    }
    let o = mlc([
        "bench".as_ref(),
        tiny_path().as_os_str(),
        "--iters".as_ref(),
        "0".as_ref(),
    ]);
    assert_status(&o, 1);
    assert!(stderr(&o).contains("--iters must be at least 1"), "{}", stderr(&o));
}
