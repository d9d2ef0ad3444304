//! The diagnostics corpus: every `tests/diagnostics/*.dsl` file is a small malformed program.
//!
//! Its first line says where the first diagnostic must point and what it must say:
//!
//! ```text
//! // expect: 7:13 unknown name `hiden`
//! ```
//!
//! More `// also: LINE:COL message` lines (anywhere in the file) name further diagnostics that
//! must be reported in the same run. Files under `tests/diagnostics/helpers/` are well-formed
//! imports of the corpus, not part of it.
//!
//! Each file must fail to compile with [`CompileError::Program`] (never `Io`, `Internal` or a
//! panic), and the full rendered diagnostics are snapshotted in `snapshots/diagnostics/` (review
//! changes with `cargo insta review`, or run with `INSTA_UPDATE=always` and read the `.snap`
//! files before keeping them).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use mlc_compiler::driver::{CompileError, compile_file};
use mlc_compiler::lower::LowerOptions;

/// The corpus folder, relative to the crate (tests run from the crate's folder, so rendered
/// paths are relative and the snapshots stable).
const CORPUS: &str = "tests/diagnostics";

/// Every corpus file, sorted, as a relative path.
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dsl"))
        .map(|p| Path::new(CORPUS).join(p.file_name().expect("a file name")))
        .collect();
    files.sort();
    files
}

/// One expected diagnostic: its 1-based line and column, and a substring of its message.
#[derive(Debug)]
struct Expected {
    line: usize,
    col: usize,
    message: String,
}

fn parse_expected(spec: &str) -> Option<Expected> {
    let (pos, message) = spec.trim().split_once(' ')?;
    let (line, col) = pos.split_once(':')?;
    Some(Expected {
        line: line.parse().ok()?,
        col: col.parse().ok()?,
        message: message.trim().to_string(),
    })
}

/// The `// expect:` line (which must come first) and every `// also:` line.
fn expectations(path: &Path, text: &str) -> Result<(Expected, Vec<Expected>), String> {
    let first = text.lines().next().unwrap_or("");
    let first = first
        .strip_prefix("// expect:")
        .and_then(parse_expected)
        .ok_or_else(|| {
            format!(
                "{}: the first line must be `// expect: LINE:COL message`",
                path.display()
            )
        })?;
    let mut also = Vec::new();
    for l in text.lines() {
        if let Some(spec) = l.trim().strip_prefix("// also:") {
            also.push(parse_expected(spec).ok_or_else(|| format!("{}: bad `// also:` line: {l}", path.display()))?);
        }
    }
    Ok((first, also))
}

/// Checks one corpus file; `Err` describes what is wrong.
fn check(path: &Path) -> Result<(), String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let (first, also) = expectations(path, &text)?;
    let result = catch_unwind(AssertUnwindSafe(|| compile_file(path, &LowerOptions::default())))
        .map_err(|_| format!("{shown}: the compiler panicked"))?;
    let (rendered, count) = match result {
        Ok(_) => return Err(format!("{shown}: compiled without errors")),
        Err(CompileError::Program { rendered, count }) => (rendered, count),
        Err(other) => return Err(format!("{shown}: expected a program error, got {other:?}")),
    };
    let head = format!("{shown}:{}:{}: error: ", first.line, first.col);
    let first_line = rendered.lines().next().unwrap_or("");
    if !first_line.starts_with(&head) || !first_line.contains(&first.message) {
        return Err(format!(
            "{shown}: expected the first diagnostic to start with `{head}` and contain `{}`, got:\n{rendered}",
            first.message
        ));
    }
    for a in &also {
        let want = format!("{shown}:{}:{}: error: ", a.line, a.col);
        if !rendered.lines().any(|l| l.starts_with(&want) && l.contains(&a.message)) {
            return Err(format!(
                "{shown}: expected a diagnostic `{want}...{}`, got:\n{rendered}",
                a.message
            ));
        }
    }
    if count != 1 + also.len() {
        return Err(format!(
            "{shown}: expected {} diagnostic(s), got {count}:\n{rendered}",
            1 + also.len()
        ));
    }
    let name = path.file_stem().expect("a file name").to_string_lossy().into_owned();
    catch_unwind(AssertUnwindSafe(|| {
        insta::with_settings!({snapshot_path => "../../snapshots/diagnostics", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(name.as_str(), rendered)
        })
    }))
    .map_err(|_| format!("{shown}: the rendered diagnostics differ from snapshots/diagnostics/{name}.snap"))
}

#[test]
fn corpus_is_large() {
    let n = corpus().len();
    assert!(n >= 45, "the diagnostics corpus has only {n} files");
}

#[test]
fn every_corpus_file_reports_its_expected_diagnostic() {
    let failures: Vec<String> = corpus().iter().filter_map(|p| check(p).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus file(s) failed:\n\n{}",
        failures.len(),
        corpus().len(),
        failures.join("\n\n")
    );
}

/// Every snapshot belongs to a corpus file (a renamed or deleted file leaves none behind).
#[test]
fn no_stale_snapshots() {
    let names: Vec<String> = corpus()
        .iter()
        .map(|p| p.file_stem().expect("a file name").to_string_lossy().into_owned())
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../snapshots/diagnostics");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let stale: Vec<String> = entries
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (!names.contains(&stem)).then_some(stem)
        })
        .collect();
    assert!(stale.is_empty(), "snapshots without a corpus file: {stale:?}");
}

/// Lines and columns count characters, so a diagnostic after non-ASCII text still lines up.
#[test]
fn columns_count_characters() {
    let src = "model M(d: int = 4) {\n  entry forward(x: f32[B, d]) {\n    return /* größe */ hiden\n  }\n}\n";
    let Err(CompileError::Program { rendered, .. }) =
        mlc_compiler::driver::compile_source("m.dsl", src, &LowerOptions::default())
    else {
        panic!("expected a program error");
    };
    assert!(
        rendered.starts_with("m.dsl:3:24: error: unknown name `hiden`"),
        "{rendered}"
    );
    assert!(rendered.contains("\n  |                        ^^^^^\n"), "{rendered}");
}
