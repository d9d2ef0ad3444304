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
    // The header is exactly two lines, written by `to_text` and read strictly: a damaged byte
    // in it must not be read as an equivalent spelling (`01`, `+1`, upper-case hex).
    let mut lines = header.split('\n');
    let first = lines.next().unwrap_or_default();
    let version = match first.split_once(' ') {
        Some((MAGIC, v)) => parse_decimal(v).ok_or_else(|| format!("bad format version `{v}`"))?,
        _ => return Err("not an mlc package (expected `mlcpkg` on the first line)".into()),
    };
    if version > FORMAT_VERSION {
        return Err(format!(
            "the package has format version {version}, newer than this mlc reads ({FORMAT_VERSION}); rebuild it with this mlc or upgrade mlc"
        ));
    }
    if version == 0 {
        return Err("bad format version `0` (versions start at 1)".into());
    }
    let sum = lines
        .next()
        .and_then(|l| l.strip_prefix("checksum fnv1a64 "))
        .and_then(parse_hex64)
        .ok_or("no checksum line (`checksum fnv1a64` and 16 lower-case hex digits)")?;
    if lines.next().is_some() {
        return Err("the package header has more than two lines".into());
    }
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

/// A decimal number as `to_text` writes it: digits only, no sign, no leading zero.
fn parse_decimal(s: &str) -> Option<u32> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Exactly 16 lower-case hex digits.
fn parse_hex64(s: &str) -> Option<u64> {
    let canonical = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if canonical {
        u64::from_str_radix(s, 16).ok()
    } else {
        None
    }
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

    /// Header bytes that a lenient reader would accept as the same header: each must be an
    /// error, since only the body is covered by the checksum.
    #[test]
    fn header_is_read_strictly() {
        let text = to_text(&Module {
            name: "M".into(),
            ..Module::default()
        });
        let sum_line = text.lines().nth(1).unwrap().to_string();
        let upper = format!(
            "checksum fnv1a64 {}",
            sum_line["checksum fnv1a64 ".len()..].to_uppercase()
        );
        let cases = [
            text.replacen("mlcpkg 1", "mlcpkg 0", 1),
            text.replacen("mlcpkg 1", "mlcpkg 01", 1),
            text.replacen("mlcpkg 1", "mlcpkg +1", 1),
            text.replacen("mlcpkg 1", "mlcpkg 1 ", 1),
            text.replacen("mlcpkg 1\n", "mlcpkg 1\r\n", 1),
            text.replacen(&sum_line, &upper, 1),
            text.replacen(&sum_line, &format!("{sum_line} "), 1),
            text.replacen(&sum_line, &format!("{sum_line}\nextra"), 1),
        ];
        for case in cases {
            assert_ne!(case, text);
            assert!(from_bytes(case.as_bytes()).is_err(), "accepted:\n{case}");
        }
        assert!(
            from_bytes(text.replacen("mlcpkg 1", "mlcpkg 2", 1).as_bytes())
                .unwrap_err()
                .contains("newer")
        );
    }
}
