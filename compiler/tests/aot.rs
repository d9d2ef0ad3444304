//! `mlc build --emit obj` end to end: the object file, its header and its C file link with a
//! small C program (`aot/main.c`) through `cc`, and what the program computes matches
//! `mlc run --backend interp` on the same inputs and weights.
//!
//! The model (`aot/model.dsl`) has an entry made of kernels only (an elementwise chain with
//! broadcasting, a row softmax, `tanh`/`erf`/`exp` callouts, a column softmax with temporaries),
//! which the C program runs through its driver function, and an entry with a matrix product, which the header must list as not
//! available. The program also calls one kernel directly: the test finds it in the header (the
//! kernel that writes the output `t`) and writes the call (`direct.h`) from the header's comment
//! alone: symbol, buffer order, dims and parallel range.
//!
//! The same again with an object from the library (`mlc_runtime::cpu::aot`) for the
//! architecture's baseline CPU features, without FMA fusion.
//!
//! Skipped, with a note, where no C compiler `cc` is installed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mlc_compiler::driver::compile_file;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::passes;
use mlc_runtime::cpu::aot::{self, AotOptions};
use mlc_runtime::cpu::jit::JitOptions;
use mlc_runtime::{Tensor, safetensors_io};

fn test_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aot")
}

/// A fresh temporary folder.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("aot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[track_caller]
fn run_ok(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    assert!(o.status.success(), "{cmd:?} failed\n{}", text(&o));
    o
}

fn mlc() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mlc"))
}

fn have_cc() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One kernel's comment in the header.
#[derive(Debug, Default)]
struct KernelDoc {
    symbol: String,
    /// `(name, access)` per buffer, in order.
    bufs: Vec<(String, String)>,
    /// The parallel range's end, a C expression over `dims[i]`.
    extent: String,
    /// `used by ENTRY: bufs = {...}, dims = {...}`: the entry's names of the buffers, and the dims.
    uses: Vec<(String, Vec<String>, Vec<String>)>,
}

fn list(s: &str) -> Vec<String> {
    let s = s.trim().trim_start_matches('{').trim_end_matches('}');
    s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// The kernels the header declares, from their comments.
fn parse_kernels(header: &str) -> Vec<KernelDoc> {
    let mut out = Vec::new();
    let mut cur: Option<KernelDoc> = None;
    for line in header.lines() {
        if line.starts_with("/* kernel `") {
            cur = Some(KernelDoc::default());
            continue;
        }
        let Some(k) = cur.as_mut() else { continue };
        let body = line.trim_start_matches(" *").trim();
        if let Some(rest) = body.strip_prefix("bufs[") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // `0]  name  dtype  access  (type *)`
            k.bufs.push((fields[1].to_string(), fields[3].to_string()));
        } else if let Some(rest) = body.strip_prefix("parallel range: 0..") {
            k.extent = rest.to_string();
        } else if let Some(rest) = body.strip_prefix("used by ") {
            let (entry, rest) = rest.split_once(": bufs = ").expect("used-by line");
            let (bufs, dims) = rest.split_once(", dims = ").expect("used-by dims");
            k.uses.push((entry.to_string(), list(bufs), list(dims)));
        } else if let Some(rest) = line.strip_prefix("void ") {
            k.symbol = rest.split('(').next().unwrap().to_string();
            out.push(cur.take().unwrap());
        }
    }
    out
}

/// `direct.h`: `call_t_kernel(B, x, s, b, t)` runs the kernel that writes `t` in `forward`,
/// over two halves of its parallel range (as two threads would).
fn direct_call(kernels: &[KernelDoc]) -> String {
    let (k, names, dims) = kernels
        .iter()
        .find_map(|k| {
            k.uses.iter().find_map(|(entry, names, dims)| {
                let writes_t = names
                    .iter()
                    .zip(&k.bufs)
                    .any(|(n, (_, access))| n == "t" && access == "write");
                (entry == "forward" && writes_t).then_some((k, names, dims))
            })
        })
        .expect("the header documents a kernel of `forward` that writes `t`");
    let ptrs: Vec<String> = names.iter().map(|n| format!("(void *){n}")).collect();
    format!(
        "static void call_t_kernel(int64_t B, const float *x, const float *s, const float *b, float *t) {{
    void *const bufs[] = {{{ptrs}}};
    const int64_t dims[] = {{{dims}}};
    int64_t n = {extent};
    (void)x; (void)s; (void)b;
    {symbol}(bufs, dims, 0, n / 2);
    {symbol}(bufs, dims, n / 2, n);
}}
",
        ptrs = ptrs.join(", "),
        dims = dims.join(", "),
        extent = k.extent,
        symbol = k.symbol,
    )
}

/// The program's output lines `KIND NAME INDEX VALUE`, by `KIND NAME`.
fn parse_values(stdout: &str) -> HashMap<String, Vec<f32>> {
    let mut out: HashMap<String, Vec<f32>> = HashMap::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 4, "unexpected line `{line}`");
        let v = out.entry(format!("{} {}", f[0], f[1])).or_default();
        assert_eq!(f[2].parse::<usize>().unwrap(), v.len(), "line `{line}` out of order");
        v.push(f[3].parse().unwrap_or_else(|_| panic!("not a number in `{line}`")));
    }
    out
}

/// Writes `direct.h` from the header next to `object`, compiles `main.c` with the object and
/// its C file, runs the program and returns what it printed.
fn link_and_run(dir: &Path, object: &Path) -> HashMap<String, Vec<f32>> {
    let header = std::fs::read_to_string(object.with_extension("h")).expect("the header");
    let kernels = parse_kernels(&header);
    assert!(!kernels.is_empty(), "no kernels in the header:\n{header}");
    std::fs::write(dir.join("direct.h"), direct_call(&kernels)).unwrap();
    let exe = dir.join("main");
    run_ok(
        Command::new("cc")
            .args(["-std=c99", "-O2", "-Wall", "-I"])
            .arg(dir)
            .arg("-o")
            .arg(&exe)
            .arg(test_dir().join("main.c"))
            .arg(object)
            .arg(object.with_extension("rt.c"))
            .arg("-lm"),
    );
    let o = run_ok(&mut Command::new(&exe));
    parse_values(&String::from_utf8_lossy(&o.stdout))
}

fn get<'v>(values: &'v HashMap<String, Vec<f32>>, key: &str) -> &'v [f32] {
    values
        .get(key)
        .unwrap_or_else(|| panic!("the program printed no `{key}`"))
}

const NB: usize = 3;
const D: usize = 5;

/// Runs `forward` through `mlc run --backend interp` on the inputs and weights the program
/// printed; returns the outputs by name.
fn interpreter_outputs(dir: &Path, values: &HashMap<String, Vec<f32>>) -> HashMap<String, Vec<f32>> {
    let inputs = vec![
        (
            "x".to_string(),
            Tensor::from_f32(&[NB, D], get(values, "in x").to_vec()),
        ),
        (
            "s".to_string(),
            Tensor::from_f32(&[NB, 1], get(values, "in s").to_vec()),
        ),
    ];
    let weights = vec![
        ("b".to_string(), Tensor::from_f32(&[D], get(values, "w b").to_vec())),
        ("w".to_string(), Tensor::from_f32(&[D, D], vec![0.0; D * D])),
    ];
    safetensors_io::save(dir.join("inputs.safetensors"), &inputs).unwrap();
    safetensors_io::save(dir.join("weights.safetensors"), &weights).unwrap();
    let reference = dir.join("reference.safetensors");
    run_ok(
        mlc()
            .arg("run")
            .arg(test_dir().join("model.dsl"))
            .args(["--entry", "forward", "--backend", "interp", "--weights"])
            .arg(dir.join("weights.safetensors"))
            .arg("--inputs")
            .arg(dir.join("inputs.safetensors"))
            .arg("-o")
            .arg(&reference),
    );
    safetensors_io::load(&reference)
        .unwrap()
        .tensors()
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.to_f32_vec()))
        .collect()
}

/// The program's outputs agree with the interpreter's (1e-5), softmax rows and columns sum to
/// 1, and the kernel called directly computed exactly what the driver did.
fn check(what: &str, values: &HashMap<String, Vec<f32>>, reference: &HashMap<String, Vec<f32>>) {
    for name in ["y", "t", "c"] {
        let want = &reference[name];
        let got = get(values, &format!("out {name}"));
        assert_eq!(got.len(), want.len(), "{what}: output {name}: length");
        let max = got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
        eprintln!("{what}: output {name}: largest difference from the interpreter {max:e}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{what}: output {name}[{i}]: AOT {g} vs interpreter {w}"
            );
        }
    }
    for row in get(values, "out y").chunks(D) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{what}: row {row:?}");
    }
    let c = get(values, "out c");
    for j in 0..D {
        let col: f32 = (0..NB).map(|i| c[i * D + j]).sum();
        assert!((col - 1.0).abs() < 1e-5, "{what}: column {j} of c sums to {col}");
    }
    let direct = get(values, "direct t");
    let driver = get(values, "out t");
    assert!(
        direct.iter().zip(driver).all(|(a, b)| a.to_bits() == b.to_bits()),
        "{what}: direct kernel call {direct:?} vs driver {driver:?}"
    );
}

#[test]
fn object_links_with_c_and_matches_the_interpreter() {
    if !have_cc() {
        eprintln!("note: no C compiler `cc` found; skipping the AOT object test");
        return;
    }
    let dir = temp_dir("native");
    let model = test_dir().join("model.dsl");
    let object = dir.join("model.o");

    // `mlc build --emit obj`: the object, its header and its C file.
    let o = run_ok(mlc().args(["build", "--emit", "obj", "-o"]).arg(&object).arg(&model));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(said.contains("entry `forward`: aot_forward"), "{said}");
    assert!(said.contains("entry `project`: not available"), "{said}");
    let header = std::fs::read_to_string(dir.join("model.h")).expect("model.h written");
    assert!(dir.join("model.rt.c").is_file(), "model.rt.c written");
    assert!(
        header.contains(
            "int aot_forward(int64_t B, const float *x, const float *s, const float *b, float *y, float *t, float *c);"
        ),
        "{header}"
    );
    assert!(
        header.contains("entry `project`: NOT AVAILABLE in the AOT object yet: its plan has 1 matrix product step"),
        "{header}"
    );
    assert!(!header.contains("int aot_project("), "{header}");

    let values = link_and_run(&dir, &object);
    let reference = interpreter_outputs(&dir, &values);
    check("native", &values, &reference);
    let _ = std::fs::remove_dir_all(&dir);

    // The library with the architecture's baseline CPU features and no FMA fusion: an object
    // that runs on any CPU of the architecture.
    let dir = temp_dir("baseline");
    let mut module = compile_file(&model, &LowerOptions::default()).expect("compiles").module;
    passes::run_pipeline(&mut module, None, |_, _| {}).expect("optimises");
    let plan = mlc_sched::plan_module(&module).expect("plans");
    let opts = AotOptions {
        codegen: JitOptions {
            fma: false,
            vectorize: true,
        },
        native_cpu: false,
        prefix: String::new(),
    };
    let out = aot::compile(&plan, &module.name, "model.h", &opts).expect("compiles to an object");
    assert!(out.header.contains("baseline CPU features"), "{}", out.header);
    let object = dir.join("model.o");
    std::fs::write(&object, &out.object).unwrap();
    std::fs::write(dir.join("model.h"), &out.header).unwrap();
    std::fs::write(dir.join("model.rt.c"), &out.runtime_c).unwrap();
    let baseline = link_and_run(&dir, &object);
    check("baseline", &baseline, &reference);
    let _ = std::fs::remove_dir_all(&dir);
}
