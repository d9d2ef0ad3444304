//! Packages: a compiled module in one file that the runtime loads without the parser of the
//! language.
//!
//! The format is text, so a person can read it:
//!
//! ```text
//! mlcpkg 1
//! checksum fnv1a64 0123456789abcdef
//!
//! module ...            (the Graph IR text form, see `mlc_ir::print_module`)
//! ```
//!
//! The checksum covers every byte after the blank line. A package written by a newer mlc (a
//! higher format version) is refused with a version error rather than misread.

use std::path::Path;

use mlc_ir::Module;

use crate::error::RuntimeError;

/// The package format version this runtime writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &str = "mlcpkg";

/// FNV-1a, 64 bit: a small, dependency-free checksum that catches damage (not tampering).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The package text of a module.
pub fn to_text(module: &Module) -> String {
    let body = mlc_ir::print_module(module);
    format!(
        "{MAGIC} {FORMAT_VERSION}\nchecksum fnv1a64 {:016x}\n\n{body}",
        fnv1a64(body.as_bytes())
    )
}

/// Writes a module as a package file.
pub fn save(path: impl AsRef<Path>, module: &Module) -> Result<(), RuntimeError> {
    let path = path.as_ref();
    std::fs::write(path, to_text(module)).map_err(|e| RuntimeError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

/// Reads and checks a package file.
pub fn load(path: impl AsRef<Path>) -> Result<Module, RuntimeError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| RuntimeError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    from_bytes(&bytes).map_err(|message| RuntimeError::Package {
        path: path.display().to_string(),
        message,
    })
}

/// Parses and checks package bytes; the error says what is wrong.
pub fn from_bytes(bytes: &[u8]) -> Result<Module, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "the package is damaged or not an mlc package (it is not UTF-8 text)".to_string())?;
    let (header, body) = text.split_once("\n\n").ok_or("not an mlc package (no header)")?;
    let mut lines = header.lines();
    let first = lines.next().unwrap_or_default();
    let version = match first.split_once(' ') {
        Some((MAGIC, v)) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| format!("bad format version `{v}`"))?,
        _ => return Err("not an mlc package (expected `mlcpkg` on the first line)".into()),
    };
    if version > FORMAT_VERSION {
        return Err(format!(
            "the package has format version {version}, newer than this mlc reads ({FORMAT_VERSION}); rebuild it with this mlc or upgrade mlc"
        ));
    }
    let sum = lines
        .next()
        .and_then(|l| l.strip_prefix("checksum fnv1a64 "))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .ok_or("no checksum line")?;
    if fnv1a64(body.as_bytes()) != sum {
        return Err("the package is damaged: its checksum does not match".into());
    }
    let module = mlc_ir::parse_module(body).map_err(|e| format!("bad module text: {e}"))?;
    mlc_ir::verify_module(&module).map_err(|errs| {
        format!(
            "the module does not verify: {}",
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ")
        )
    })?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let m = Module {
            name: "M".into(),
            ..Module::default()
        };
        let text = to_text(&m);
        assert_eq!(from_bytes(text.as_bytes()).unwrap(), m);
        let mut damaged = text.clone().into_bytes();
        let last = damaged.len() - 2;
        damaged[last] ^= 1;
        assert!(from_bytes(&damaged).unwrap_err().contains("checksum"));
        let newer = text.replacen("mlcpkg 1", "mlcpkg 9", 1);
        assert!(from_bytes(newer.as_bytes()).unwrap_err().contains("newer"));
        assert!(from_bytes(b"hello").is_err());
    }
}
