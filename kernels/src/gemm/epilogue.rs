//! Fused GEMM epilogues: scale, bias, activation, residual add.
//!
//! The driver applies the epilogue to a block of output rows right after the micro-kernels wrote
//! it (at most `MR` rows by `NC` columns, still in L1/L2). The element functions here are written
//! without branches or library calls so that the compiler vectorises the row loops; each kernel
//! variant instantiates [`apply_rows`] with its own target features.

/// The activation of an [`Epilogue`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)` (NaN stays NaN).
    Relu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, computed as `x * sigmoid(2u)`.
    GeluTanh,
    /// `0.5 x (1 + erf(x / sqrt 2))`, with a rational `erfc` (relative error about 1e-6).
    GeluErf,
    /// `x * sigmoid(x)`.
    Silu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
}

impl Activation {
    /// The activation of one value, with exactly the formulas the fused epilogue uses.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => relu(x),
            Activation::GeluTanh => gelu_tanh(x),
            Activation::GeluErf => gelu_erf(x),
            Activation::Silu => silu(x),
            Activation::Tanh => tanh(x),
            Activation::Sigmoid => sigmoid(x),
        }
    }
}

/// A residual matrix added last: element `(i, j)` is `data[i * ld + j]` (plus, in
/// [`gemm_batched`](super::gemm_batched), the batch offset from `batch_strides`).
#[derive(Clone, Copy, Debug)]
pub struct Residual<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride, in elements.
    pub ld: usize,
    /// One stride per batch dimension (0 broadcasts); empty means the same residual for every
    /// batch. Ignored outside batched calls.
    pub batch_strides: &'a [usize],
}

impl<'a> Residual<'a> {
    /// A row-major residual with row stride `ld`.
    pub fn new(data: &'a [f32], ld: usize) -> Self {
        Residual {
            data,
            ld,
            batch_strides: &[],
        }
    }
}

/// What happens to the product before it is stored, in this order:
///
/// 1. `t = alpha * A @ B`, plus the old `C` when accumulating ([`GemmOpts`](super::GemmOpts));
/// 2. `t = t * scale` ([`Epilogue::scale`]);
/// 3. `t = t + bias[j]` (one value per output column);
/// 4. `t = activation(t)`;
/// 5. `C[i, j] = t + residual[i, j]`.
///
/// Every part is optional; the default is the identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue<'a> {
    /// Multiplies the product (after accumulation).
    pub scale: Option<f32>,
    /// Per-column bias, at least `N` values.
    pub bias: Option<&'a [f32]>,
    /// Activation after scale and bias.
    pub activation: Activation,
    /// Added after the activation.
    pub residual: Option<Residual<'a>>,
}

/// An epilogue as raw pointers for the driver (null = absent).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEpi {
    pub scale: f32,
    pub bias: *const f32,
    pub act: Activation,
    pub res: *const f32,
    pub res_ld: usize,
}

// SAFETY: the pointers are shared, read-only borrows of data that outlives the GEMM call.
unsafe impl Send for RawEpi {}
// SAFETY: as above; nothing writes through these pointers.
unsafe impl Sync for RawEpi {}

impl RawEpi {
    pub(crate) fn is_identity(&self) -> bool {
        self.scale == 1.0 && self.bias.is_null() && self.act == Activation::None && self.res.is_null()
    }
}

impl Epilogue<'_> {
    /// Checks the epilogue against an `m x n` output and returns its raw form.
    ///
    /// # Panics
    ///
    /// If the bias has fewer than `n` values or the residual is too small.
    pub(crate) fn raw(&self, m: usize, n: usize) -> RawEpi {
        self.raw_batched(m, n, 0)
    }

    /// As [`raw`](Self::raw); the residual must also hold `extra` elements past the first
    /// matrix (the largest batch offset).
    pub(crate) fn raw_batched(&self, m: usize, n: usize, extra: usize) -> RawEpi {
        if let Some(bias) = self.bias {
            assert!(
                bias.len() >= n,
                "epilogue bias has {} values, the output has {n} columns",
                bias.len()
            );
        }
        if let Some(r) = &self.residual {
            assert!(m <= 1 || r.ld >= n, "epilogue residual rows overlap: ld {} < {n}", r.ld);
            let need = super::span(m, n, r.ld, 1) + if m == 0 || n == 0 { 0 } else { extra };
            assert!(
                r.data.len() >= need,
                "epilogue residual {m}x{n} (ld {}) needs {need} elements, the slice has {}",
                r.ld,
                r.data.len()
            );
        }
        RawEpi {
            scale: self.scale.unwrap_or(1.0),
            bias: self.bias.map_or(std::ptr::null(), |b| b.as_ptr()),
            act: self.activation,
            res: self.residual.as_ref().map_or(std::ptr::null(), |r| r.data.as_ptr()),
            res_ld: self.residual.as_ref().map_or(0, |r| r.ld),
        }
    }
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// `1.5 * 2^23`: adding it rounds a float of magnitude below `2^22` to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` to about 1 ulp on `[-86, 88]`; inputs outside are clamped (so `exp(-inf)` is about
/// `4e-38`, not 0). Branch-free, so loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-86.0, 88.0);
    let t = x * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits((ni.wrapping_add(127) as u32) << 23)
}

#[inline(always)]
fn relu(x: f32) -> f32 {
    if x < 0.0 { 0.0 } else { x }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    let ax = x.abs();
    let big = 1.0 - 2.0 / (exp(2.0 * ax) + 1.0);
    let x2 = x * x;
    let small = ax
        * (1.0
            + x2 * (-1.0 / 3.0
                + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0 + x2 * (-1382.0 / 155_925.0))))));
    let y = if ax < 0.3 { small } else { big };
    y.copysign(x)
}

#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    let u = C * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    // erfc(z) for z >= 0 (Numerical Recipes' erfcc, fractional error below 1.2e-7):
    // t = 1 / (1 + z/2), erfc(z) = t exp(-z^2 + P(t)). GELU(x) = x/2 erfc(-x / sqrt 2).
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204 + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let h = 0.5 * x * t * exp(p - z * z);
    if x > 0.0 { x - h } else { h }
}

/// Applies `e` to `rows` rows of `len` columns starting at `c` (row stride `ldc`), which are
/// output rows `row0..` and columns `col0..`.
///
/// # Safety
///
/// `c` must address `rows` writable rows of `len` elements with stride `ldc`; `e.bias` (if not
/// null) must hold `col0 + len` values and `e.res` (if not null) rows `row0..row0 + rows` of
/// `col0 + len` values with stride `e.res_ld`; none of them may overlap `c`.
#[inline(always)]
pub(crate) unsafe fn apply_rows(
    e: &RawEpi,
    c: *mut f32,
    ldc: usize,
    row0: usize,
    rows: usize,
    col0: usize,
    len: usize,
) {
    for r in 0..rows {
        // SAFETY: in bounds and disjoint by the caller's contract.
        let (x, bias, res) = unsafe {
            (
                std::slice::from_raw_parts_mut(c.add(r * ldc), len),
                if e.bias.is_null() {
                    None
                } else {
                    Some(std::slice::from_raw_parts(e.bias.add(col0), len))
                },
                if e.res.is_null() {
                    None
                } else {
                    Some(std::slice::from_raw_parts(e.res.add((row0 + r) * e.res_ld + col0), len))
                },
            )
        };
        apply_row(e.scale, bias, e.act, res, x);
    }
}

#[inline(always)]
fn apply_row(scale: f32, bias: Option<&[f32]>, act: Activation, res: Option<&[f32]>, x: &mut [f32]) {
    match (scale != 1.0, bias) {
        (true, Some(b)) => x.iter_mut().zip(b).for_each(|(x, b)| *x = *x * scale + b),
        (false, Some(b)) => x.iter_mut().zip(b).for_each(|(x, b)| *x += b),
        (true, None) => x.iter_mut().for_each(|x| *x *= scale),
        (false, None) => {}
    }
    match act {
        Activation::None => {}
        Activation::Relu => x.iter_mut().for_each(|x| *x = relu(*x)),
        Activation::GeluTanh => x.iter_mut().for_each(|x| *x = gelu_tanh(*x)),
        Activation::GeluErf => x.iter_mut().for_each(|x| *x = gelu_erf(*x)),
        Activation::Silu => x.iter_mut().for_each(|x| *x = silu(*x)),
        Activation::Tanh => x.iter_mut().for_each(|x| *x = tanh(*x)),
        Activation::Sigmoid => x.iter_mut().for_each(|x| *x = sigmoid(*x)),
    }
    if let Some(r) = res {
        x.iter_mut().zip(r).for_each(|(x, r)| *x += r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erf64(x: f64) -> f64 {
        // Series / continued fraction free reference: high-order numerical integration of
        // 2/sqrt(pi) exp(-t^2) on [0, x] with Simpson's rule.
        let n = 20_000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_accurate() {
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            assert!(((got - want) / want).abs() < 3e-7, "exp({x}) = {got}, want {want}");
            x += 0.0137;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn activations_match_f64_references() {
        let mut x = -12.0f32;
        while x < 12.0 {
            let xd = f64::from(x);
            let sig = 1.0 / (1.0 + (-xd).exp());
            let u = (2.0 / std::f64::consts::PI).sqrt() * (xd + 0.044715 * xd * xd * xd);
            let refs = [
                (Activation::Relu, xd.max(0.0)),
                (Activation::Sigmoid, sig),
                (Activation::Silu, xd * sig),
                (Activation::Tanh, xd.tanh()),
                (Activation::GeluTanh, 0.5 * xd * (1.0 + u.tanh())),
                (
                    Activation::GeluErf,
                    0.5 * xd * (1.0 + erf64(xd / std::f64::consts::SQRT_2)),
                ),
            ];
            for (act, want) in refs {
                let got = f64::from(act.apply(x));
                let tol = 2e-6 * want.abs().max(1e-3) + 1e-7;
                assert!((got - want).abs() <= tol, "{act:?}({x}) = {got}, want {want}");
            }
            x += 0.0173;
        }
        assert_eq!(Activation::Tanh.apply(1e-6), 1e-6);
        assert!(Activation::Relu.apply(f32::NAN).is_nan());
    }
}
