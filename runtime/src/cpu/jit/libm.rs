//! Scalar functions that Cranelift has no instruction for. Compiled kernels call them as
//! imported functions named by [`Libm::symbol`] (`mlc_rt_expf`, ...). The JIT binds those
//! symbols to the Rust functions below, so its results are the interpreter's bit for bit (same
//! Rust functions, same `f32` evaluation). An object file written by [`crate::cpu::aot`] leaves
//! them to the linker, under names of its own (`PREFIX_rt_expf`, ...); [`Libm::c_definition`]
//! is the C source of each, the same computation in C: the float functions call the C
//! library's (`expf`, `tanhf`, ..., which Rust's `f32` methods also call on Linux), and `erf` is
//! a transcription of the interpreter's double-precision series, so AOT code agrees with the
//! JIT wherever the C library is the one Rust uses.

use cranelift_codegen::ir::types::{F32, I64};
use cranelift_codegen::ir::{AbiParam, Signature, Type};
use cranelift_codegen::isa::CallConv;

/// A callout. The discriminant indexes the per-function `FuncRef` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Libm {
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
    pub(crate) const ALL: [Libm; 10] = [
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

    /// The symbol kernels call (the JIT's registered name, an object file's import).
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Libm::Exp => "mlc_rt_expf",
            Libm::Log => "mlc_rt_logf",
            Libm::Tanh => "mlc_rt_tanhf",
            Libm::Sigmoid => "mlc_rt_sigmoidf",
            Libm::Erf => "mlc_rt_erff",
            Libm::Sin => "mlc_rt_sinf",
            Libm::Cos => "mlc_rt_cosf",
            Libm::Pow => "mlc_rt_powf",
            Libm::Rem => "mlc_rt_remf",
            Libm::IPow => "mlc_rt_ipow",
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

    /// The function's name without the `mlc_rt_` of [`Self::symbol`] (`expf`).
    pub(crate) fn base_name(self) -> &'static str {
        &self.symbol()["mlc_rt_".len()..]
    }

    /// A C definition of the function under the name `symbol` that computes what the Rust
    /// function does (needs `<math.h>` and `<stdint.h>`).
    pub(crate) fn c_definition(self, symbol: &str) -> String {
        self.c_template().replace(self.symbol(), symbol)
    }

    /// The C definition, named [`Self::symbol`].
    fn c_template(self) -> &'static str {
        match self {
            Libm::Exp => "float mlc_rt_expf(float x) { return expf(x); }",
            Libm::Log => "float mlc_rt_logf(float x) { return logf(x); }",
            Libm::Tanh => "float mlc_rt_tanhf(float x) { return tanhf(x); }",
            Libm::Sigmoid => "float mlc_rt_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }",
            Libm::Erf => ERF_C,
            Libm::Sin => "float mlc_rt_sinf(float x) { return sinf(x); }",
            Libm::Cos => "float mlc_rt_cosf(float x) { return cosf(x); }",
            Libm::Pow => "float mlc_rt_powf(float a, float b) { return powf(a, b); }",
            Libm::Rem => REM_C,
            Libm::IPow => IPOW_C,
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

/// `crate::interp::erf` in C, operation for operation (no operation in it can be contracted into
/// an `fma`, so `-ffp-contract` does not change its result), rounded to `float`.
const ERF_C: &str = "\
float mlc_rt_erff(float xf) {
    double x = (double)xf, a, r;
    if (x != x) return xf;
    a = fabs(x);
    if (a < 3.0) {
        double x2 = a * a, term = a, sum = a, n = 0.0;
        for (;;) {
            double t;
            n += 1.0;
            term *= -x2 / n;
            t = term / (2.0 * n + 1.0);
            sum += t;
            if (fabs(t) <= 1e-17 * fabs(sum)) break;
        }
        r = sum * 2.0 / sqrt(3.14159265358979323846);
    } else if (a < 6.0) {
        double t = a;
        int n;
        for (n = 60; n >= 1; n--) t = a + ((double)n / 2.0) / t;
        r = 1.0 - exp(-a * a) / (sqrt(3.14159265358979323846) * t);
    } else {
        r = 1.0;
    }
    return (float)copysign(r, x);
}";

const REM_C: &str = "\
float mlc_rt_remf(float a, float b) {
    float r = fmodf(a, b);
    if (r == 0.0f) return copysignf(0.0f, b);
    if ((r < 0.0f) != (b < 0.0f)) return r + b;
    return r;
}";

const IPOW_C: &str = "\
int64_t mlc_rt_ipow(int64_t base, int64_t e) {
    uint64_t b = (uint64_t)base, acc = 1, k;
    if (e < 0) return 0;
    for (k = (uint64_t)e; k > 0; k >>= 1) {
        if (k & 1) acc *= b;
        b *= b;
    }
    return (int64_t)acc;
}";

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
    match u64::try_from(e) {
        Ok(e) => crate::interp::elementwise::ipow(base, e),
        Err(_) => 0,
    }
}
