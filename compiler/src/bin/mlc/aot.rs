//! `mlc build --emit obj`: the kernels of a module in a native object file with a C ABI, its
//! header and its C support file (see `mlc_runtime::cpu::aot`).

use std::fs;
use std::path::{Path, PathBuf};

use mlc_ir::Module;
use mlc_runtime::cpu::aot::{self, AotOptions};

use crate::CliError;

/// `OUT.h` and `OUT.rt.c` for the object `OUT.o` (`OUT` is the object path without its
/// extension).
pub fn companion_paths(object: &Path) -> (PathBuf, PathBuf) {
    let stem = object.with_extension("");
    let with = |suffix: &str| {
        let mut s = stem.clone().into_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    (with(".h"), with(".rt.c"))
}

/// Plans the optimised `module`, compiles its kernels and writes the object, the header and
/// the C file. `out` defaults to the model file with the extension `.o`.
pub fn emit_obj(module: &Module, model_file: &Path, out: Option<&Path>) -> Result<(), CliError> {
    let plan = mlc_sched::plan_module(module).map_err(|e| CliError::Internal(e.to_string()))?;
    let object_path = out.map_or_else(|| model_file.with_extension("o"), Path::to_path_buf);
    let (header_path, c_path) = companion_paths(&object_path);
    let header_file = header_path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::user(format!("error: {} is not a usable file name", object_path.display())))?
        .to_string();
    let result = aot::compile(&plan, &module.name, &header_file, &AotOptions::default())
        .map_err(|e| CliError::Internal(format!("compiling the kernels: {e}")))?;
    let write = |path: &Path, bytes: &[u8]| {
        fs::write(path, bytes).map_err(|e| CliError::user(format!("error: cannot write {}: {e}", path.display())))
    };
    write(&object_path, &result.object)?;
    write(&header_path, result.header.as_bytes())?;
    write(&c_path, result.runtime_c.as_bytes())?;
    println!(
        "wrote {}, {}, {}",
        object_path.display(),
        header_path.display(),
        c_path.display()
    );
    for k in &result.kernels {
        if let Some(why) = &k.unavailable {
            eprintln!("note: kernel `{}` is not in the object: {why}", k.name);
        }
    }
    for e in &result.entries {
        match &e.unavailable {
            None => println!("  entry `{}`: {}(...)", e.name, e.symbol),
            Some(why) => println!("  entry `{}`: not available in the object yet: {why}", e.name),
        }
    }
    println!(
        "  {} kernel(s); link with: cc main.c {} {} -lm",
        result.kernels.iter().filter(|k| k.unavailable.is_none()).count(),
        object_path.display(),
        c_path.display()
    );
    Ok(())
}
