//! The loader: imports of files and standard-library modules, scopes, and the errors it collects.

use std::path::{Path, PathBuf};

use mlc_dsl::ast::Item;
use mlc_dsl::{LoadError, Program, load_file, load_source};

/// A fresh folder under the system temp dir holding `files`.
fn temp_project(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mlc-dsl-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn load_ok(path: &Path) -> Program {
    match load_file(path) {
        Ok(p) => p,
        Err(e) => panic!("{}", e.render()),
    }
}

fn load_err(path: &Path) -> String {
    match load_file(path) {
        Ok(_) => panic!("loaded, expected errors"),
        Err(e) => e.render(),
    }
}

fn scope_names(p: &Program, name: &str) -> Vec<String> {
    let id = p.sources.find_name(name).unwrap_or_else(|| panic!("no file {name}"));
    p.scopes[&id].keys().cloned().collect()
}

#[test]
fn imports_resolve_and_are_not_reexported() {
    let dir = temp_project(
        "resolve",
        &[
            (
                "a.dsl",
                "import \"lib/b.dsl\".{B}\nimport \"lib/b.dsl\"\nimport \"lib/../lib/b.dsl\"\nimport std.math.{softmax}\nmodel A { b = B }\n",
            ),
            ("lib/b.dsl", "import \"c.dsl\"\nblock B { c = C }\nfn helper(x) = x\n"),
            ("lib/c.dsl", "block C { }\n"),
        ],
    );
    let p = load_ok(&dir.join("a.dsl"));
    // a, b, c and std/math: each once.
    assert_eq!(p.files.len(), 4);
    assert_eq!(p.root, p.files[0].0);
    let a = dir.join("a.dsl").display().to_string();
    let b = dir.join("lib/b.dsl").display().to_string();
    assert_eq!(scope_names(&p, &a), ["A", "B", "helper", "softmax"]);
    assert_eq!(scope_names(&p, &b), ["B", "C", "helper"]);
    assert!(p.sources.find_name("std/math.dsl").is_some());
    // Lookups point at the definitions.
    let b_ref = p.lookup(p.root, "B").unwrap();
    assert!(matches!(p.item(b_ref), Some(Item::Block(blk)) if blk.name.name == "B"));
    assert_eq!(p.sources.file(b_ref.file).name, b);
    let c_ref = p.lookup(b_ref.file, "C").unwrap();
    assert_eq!(
        p.sources.file(c_ref.file).name,
        dir.join("lib/c.dsl").display().to_string()
    );
    assert!(p.lookup(p.root, "C").is_none());
}

#[test]
fn recursive_imports() {
    let dir = temp_project(
        "recursive",
        &[
            ("a.dsl", "import \"b.dsl\"\nfn a() = 1\n"),
            ("b.dsl", "fn b() = 2\nimport \"a.dsl\"\n"),
            ("self.dsl", "import \"self.dsl\"\n"),
        ],
    );
    let a = dir.join("a.dsl").display().to_string();
    let b = dir.join("b.dsl").display().to_string();
    assert_eq!(
        load_err(&dir.join("a.dsl")),
        format!(
            "{a}:1:1: error: recursive import: {a} -> {b} -> {a}
  |
1 | import \"b.dsl\"
  | ^^^^^^^^^^^^^^
  = `{b}` imports `{a}` again at {b}:2:1
  = expected imports without cycles: move the shared items into a file both can import
"
        )
    );
    let s = dir.join("self.dsl").display().to_string();
    assert!(load_err(&dir.join("self.dsl")).starts_with(&format!("{s}:1:1: error: recursive import: {s} -> {s}\n")));
}

#[test]
fn missing_files() {
    let dir = temp_project("missing", &[("a.dsl", "fn f() = 1\n\nimport \"nope.dsl\".{X}\n")]);
    let a = dir.join("a.dsl").display().to_string();
    let err = load_err(&dir.join("a.dsl"));
    assert!(
        err.starts_with(&format!(
            "{a}:3:1: error: cannot find imported file `nope.dsl`
  |
3 | import \"nope.dsl\".{{X}}
  | ^^^^^^^^^^^^^^^^^^^^^
  = looked for `{}`: ",
            dir.join("nope.dsl").display()
        )),
        "{err}"
    );
    match load_file(&dir.join("absent.dsl")) {
        Err(e @ LoadError::Io { .. }) => {
            assert!(
                e.render()
                    .starts_with(&format!("error: cannot read `{}`: ", dir.join("absent.dsl").display()))
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn standard_library() {
    assert!(load_source("t.dsl", "import std.nn\nimport std.attention\nimport std.math\n").is_ok());
    let err = load_source("t.dsl", "fn f() = 1\nimport std.nnn.{Linear}\n").unwrap_err();
    assert_eq!(
        err.render(),
        "t.dsl:2:12: error: unknown standard library module `std.nnn`
  |
2 | import std.nnn.{Linear}
  |            ^^^
  = available: std.math, std.nn, std.attention, std.llama
"
    );
    let err = load_source("t.dsl", "import std.math.{NoSuchThing}\n")
        .unwrap_err()
        .render();
    assert!(
        err.starts_with("t.dsl:1:18: error: `std/math.dsl` has no item named `NoSuchThing`\n"),
        "{err}"
    );
}

#[test]
fn all_errors_are_collected() {
    let dir = temp_project(
        "collect",
        &[
            (
                "a.dsl",
                "import \"x.dsl\"\nimport \"y.dsl\"\nimport \"bad.dsl\"\nimport \"x.dsl\".{Nope, Local}\n\
                 fn Local() = 1\nblock Local { }\nimport \"missing.dsl\"\n",
            ),
            ("x.dsl", "fn F() = 1\nfn Local() = 3\n"),
            ("y.dsl", "fn F() = 2\nfn G() = (\n"),
            ("bad.dsl", "block { }\n"),
        ],
    );
    let err = match load_file(&dir.join("a.dsl")) {
        Err(LoadError::Diagnostics { diagnostics, .. }) => diagnostics,
        other => panic!("{other:?}"),
    };
    let messages: Vec<&str> = err.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "unexpected end of file",
            "unexpected `{`",
            "cannot find imported file `missing.dsl`",
            "`Local` is defined twice in this file",
            &format!("`{}` has no item named `Nope`", dir.join("x.dsl").display()),
            "`Local` is imported here but also defined in this file",
        ]
    );
}

#[test]
fn conflicting_imports() {
    let dir = temp_project(
        "conflict",
        &[
            ("a.dsl", "import \"x.dsl\"\nimport \"y.dsl\"\n"),
            (
                "b.dsl",
                "import \"x.dsl\"\nimport \"x.dsl\".{F}\nfn G() = 0\nimport \"y.dsl\".{H}\n",
            ),
            ("x.dsl", "fn F() = 1\nfn G() = 1\n"),
            ("y.dsl", "fn F() = 2\nfn H() = 2\n"),
        ],
    );
    let (x, y) = (
        dir.join("x.dsl").display().to_string(),
        dir.join("y.dsl").display().to_string(),
    );
    let err = load_err(&dir.join("a.dsl"));
    assert!(
        err.contains(&format!("error: `F` is imported from both `{x}` and `{y}`")),
        "{err}"
    );
    assert!(
        err.contains(&format!("= first imported at {}:1:1", dir.join("a.dsl").display())),
        "{err}"
    );
    // The same definition twice is fine, and a local item shadows a whole-module import.
    let p = load_ok(&dir.join("b.dsl"));
    let g = p.lookup(p.root, "G").unwrap();
    assert_eq!(g.file, p.root);
    assert_eq!(
        scope_names(&p, &dir.join("b.dsl").display().to_string()),
        ["F", "G", "H"]
    );
}
