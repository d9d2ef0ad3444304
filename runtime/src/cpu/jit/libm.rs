//! Scalar functions that Cranelift has no instruction for. Compiled kernels call them through
//! symbols registered with the JIT, so their results are the interpreter's bit for bit (same
//! Rust functions, same `f32` evaluation).

use cranelift_codegen::ir::types::{F32, I64};
use cranelift_codegen::ir::{AbiParam, Signature, Type};
use cranelift_codegen::isa::CallConv;

/// A callout. The discriminant indexes the per-function `FuncRef` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Libm {
    Exp,
    Log,
    Tanh,
    Sigmoid,
    Erf,
    Sin,
    Cos,
    Pow,
    Rem,
    IPow,
}

impl Libm {
    pub(super) const ALL: [Libm; 10] = [
        Libm::Exp,
        Libm::Log,
        Libm::Tanh,
        Libm::Sigmoid,
        Libm::Erf,
        Libm::Sin,
        Libm::Cos,
        Libm::Pow,
        Libm::Rem,
        Libm::IPow,
    ];

    /// The JIT symbol name.
    pub(super) fn symbol(self) -> &'static str {
        match self {
            Libm::Exp => "mlc_jit_expf",
            Libm::Log => "mlc_jit_logf",
            Libm::Tanh => "mlc_jit_tanhf",
            Libm::Sigmoid => "mlc_jit_sigmoidf",
            Libm::Erf => "mlc_jit_erff",
            Libm::Sin => "mlc_jit_sinf",
            Libm::Cos => "mlc_jit_cosf",
            Libm::Pow => "mlc_jit_powf",
            Libm::Rem => "mlc_jit_remf",
            Libm::IPow => "mlc_jit_ipow",
        }
    }

    /// The address of the Rust implementation.
    pub(super) fn address(self) -> *const u8 {
        match self {
            Libm::Exp => expf as *const u8,
            Libm::Log => logf as *const u8,
            Libm::Tanh => tanhf as *const u8,
            Libm::Sigmoid => sigmoidf as *const u8,
            Libm::Erf => erff as *const u8,
            Libm::Sin => sinf as *const u8,
            Libm::Cos => cosf as *const u8,
            Libm::Pow => powf as *const u8,
            Libm::Rem => remf as *const u8,
            Libm::IPow => ipow as *const u8,
        }
    }

    /// The C signature of the function.
    pub(super) fn signature(self, call_conv: CallConv) -> Signature {
        let (params, ret): (&[Type], Type) = match self {
            Libm::Pow | Libm::Rem => (&[F32, F32], F32),
            Libm::IPow => (&[I64, I64], I64),
            _ => (&[F32], F32),
        };
        let mut sig = Signature::new(call_conv);
        sig.params.extend(params.iter().map(|&t| AbiParam::new(t)));
        sig.returns.push(AbiParam::new(ret));
        sig
    }
}

extern "C" fn expf(x: f32) -> f32 {
    x.exp()
}

extern "C" fn logf(x: f32) -> f32 {
    x.ln()
}

extern "C" fn tanhf(x: f32) -> f32 {
    x.tanh()
}

extern "C" fn sigmoidf(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

extern "C" fn erff(x: f32) -> f32 {
    crate::interp::erf(f64::from(x)) as f32
}

extern "C" fn sinf(x: f32) -> f32 {
    x.sin()
}

extern "C" fn cosf(x: f32) -> f32 {
    x.cos()
}

extern "C" fn powf(a: f32, b: f32) -> f32 {
    a.powf(b)
}

/// Python's float remainder: the sign of the divisor (the interpreter's `rem_f32`).
extern "C" fn remf(a: f32, b: f32) -> f32 {
    let r = a % b;
    if r == 0.0 {
        0.0f32.copysign(b)
    } else if (r < 0.0) != (b < 0.0) {
        r + b
    } else {
        r
    }
}

/// Wrapping integer power by squaring. A negative exponent (an error in the interpreter) gives 0:
/// a kernel cannot report errors.
extern "C" fn ipow(base: i64, e: i64) -> i64 {
    let Ok(mut e) = u64::try_from(e) else {
        return 0;
    };
    let mut base = base;
    let mut acc: i64 = 1;
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    acc
}
