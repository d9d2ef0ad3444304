//! The text form of the Kernel IR (what `mlc dump-kernels` shows and what snapshots hold).
//!
//! ```text
//! kernel softmax_max(x: f32 read, m: f32 write) dims(rows, n) parallel i0 in 0..rows {
//!   acc v1: f32 = -inf
//!   for i2 in 0..n {
//!     v1 = max(v1, x[i0*n + i2])
//!   }
//!   m[i0] = v1
//! }
//! ```
//! Index variables print as `iN`, scalar variables as `vN`, dims by name, buffers by name.

use std::fmt::Write as _;

use super::{Access, IExpr, KStmt, KernelFn, Scalar, VExpr};
use crate::op::Op;

/// Prints one kernel.
pub fn print_kernel(k: &KernelFn) -> String {
    let mut out = String::new();
    let bufs: Vec<String> = k
        .bufs
        .iter()
        .map(|b| {
            format!(
                "{}: {} {}",
                b.name,
                b.dtype,
                if b.access == Access::Read { "read" } else { "write" }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "kernel {}({}) dims({}) parallel i{} in 0..{} {{",
        k.name,
        bufs.join(", "),
        k.dims.join(", "),
        k.parallel.0,
        iexpr(k, &k.parallel.1)
    );
    for s in &k.body {
        stmt(k, s, 1, &mut out);
    }
    out.push_str("}\n");
    out
}

fn stmt(k: &KernelFn, s: &KStmt, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    match s {
        KStmt::Loop {
            var,
            extent,
            vectorize,
            body,
        } => {
            let v = if *vectorize { " vectorize" } else { "" };
            let _ = writeln!(out, "{pad}for i{var} in 0..{}{v} {{", iexpr(k, extent));
            for b in body {
                stmt(k, b, depth + 1, out);
            }
            let _ = writeln!(out, "{pad}}}");
        }
        KStmt::Let { var, dtype, value } => {
            let _ = writeln!(out, "{pad}let v{var}: {dtype} = {}", vexpr(k, value));
        }
        KStmt::Acc { var, dtype, init } => {
            let _ = writeln!(out, "{pad}acc v{var}: {dtype} = {}", vexpr(k, init));
        }
        KStmt::Assign { var, value } => {
            let _ = writeln!(out, "{pad}v{var} = {}", vexpr(k, value));
        }
        KStmt::Store { buf, index, value } => {
            let _ = writeln!(
                out,
                "{pad}{}[{}] = {}",
                k.bufs[*buf as usize].name,
                iexpr(k, index),
                vexpr(k, value)
            );
        }
    }
}

/// Prints an index expression with `+` binding looser than `*`, `/`, `%`.
fn iexpr(k: &KernelFn, e: &IExpr) -> String {
    fn go(k: &KernelFn, e: &IExpr, parent_mul: bool) -> String {
        match e {
            IExpr::Const(c) => c.to_string(),
            IExpr::Var(v) => format!("i{v}"),
            IExpr::Dim(d) => k.dims.get(*d as usize).cloned().unwrap_or_else(|| format!("dim{d}")),
            IExpr::Add(a, b) => {
                let s = format!("{} + {}", go(k, a, false), go(k, b, false));
                if parent_mul { format!("({s})") } else { s }
            }
            IExpr::Mul(a, b) => format!("{}*{}", go(k, a, true), go(k, b, true)),
            IExpr::Div(a, b) => format!("{} / {}", go(k, a, true), go(k, b, true)),
            IExpr::Rem(a, b) => format!("{} % {}", go(k, a, true), go(k, b, true)),
        }
    }
    go(k, e, false)
}

fn scalar(s: &Scalar) -> String {
    match s {
        Scalar::F32(f) => {
            if f.is_infinite() {
                if *f > 0.0 { "inf".into() } else { "-inf".into() }
            } else {
                format!("{f:?}")
            }
        }
        Scalar::I32(i) => format!("{i}i32"),
        Scalar::I64(i) => format!("{i}"),
        Scalar::Bool(b) => b.to_string(),
    }
}

fn vexpr(k: &KernelFn, e: &VExpr) -> String {
    match e {
        VExpr::Load { buf, index } => format!("{}[{}]", k.bufs[*buf as usize].name, iexpr(k, index)),
        VExpr::Const(s) => scalar(s),
        VExpr::Var(v) => format!("v{v}"),
        VExpr::Index(i) => format!("index({})", iexpr(k, i)),
        VExpr::Unary(op, x) => format!("{}({})", Op::Unary(*op).mnemonic(), vexpr(k, x)),
        VExpr::Binary(op, a, b) => format!("{}({}, {})", Op::Binary(*op).mnemonic(), vexpr(k, a), vexpr(k, b)),
        VExpr::Select(c, a, b) => format!("select({}, {}, {})", vexpr(k, c), vexpr(k, a), vexpr(k, b)),
        VExpr::Cast(d, x) => format!("cast<{d}>({})", vexpr(k, x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;
    use crate::kernel::KBuf;
    use crate::op::BinaryOp;
    use std::ops::{Add, Mul};

    #[test]
    fn prints_a_row_max_kernel() {
        let k = KernelFn {
            name: "row_max".into(),
            bufs: vec![
                KBuf {
                    name: "x".into(),
                    dtype: DType::F32,
                    access: Access::Read,
                },
                KBuf {
                    name: "m".into(),
                    dtype: DType::F32,
                    access: Access::Write,
                },
            ],
            dims: vec!["rows".into(), "n".into()],
            parallel: (0, IExpr::Dim(0)),
            body: vec![
                KStmt::Acc {
                    var: 1,
                    dtype: DType::F32,
                    init: VExpr::Const(Scalar::F32(f32::NEG_INFINITY)),
                },
                KStmt::Loop {
                    var: 2,
                    extent: IExpr::Dim(1),
                    vectorize: false,
                    body: vec![KStmt::Assign {
                        var: 1,
                        value: VExpr::Binary(
                            BinaryOp::Max,
                            Box::new(VExpr::Var(1)),
                            Box::new(VExpr::Load {
                                buf: 0,
                                index: Add::add(Mul::mul(IExpr::Var(0), IExpr::Dim(1)), IExpr::Var(2)),
                            }),
                        ),
                    }],
                },
                KStmt::Store {
                    buf: 1,
                    index: IExpr::Var(0),
                    value: VExpr::Var(1),
                },
            ],
        };
        assert_eq!(
            print_kernel(&k),
            "kernel row_max(x: f32 read, m: f32 write) dims(rows, n) parallel i0 in 0..rows {\n  acc v1: f32 = -inf\n  for i2 in 0..n {\n    v1 = max(v1, x[i0*n + i2])\n  }\n  m[i0] = v1\n}\n"
        );
    }
}
