//! Elementwise ops: unary, binary (with broadcasting) and select.

use mlc_ir::{BinaryOp, DType, UnaryOp};

use crate::error::RuntimeError;
use crate::tensor::Tensor;

use super::NodeCx;
use super::layout::{broadcast, broadcast_map, concat_data, pick_data};
use super::math::erf;

fn sign_f32(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        x // ±0 and NaN
    }
}

fn unary_f32(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Erf => erf(f64::from(x)) as f32,
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Floor => x.floor(),
        UnaryOp::Ceil => x.ceil(),
        UnaryOp::Round => x.round_ties_even(),
        UnaryOp::Sign => sign_f32(x),
        UnaryOp::Not => f32::NAN, // rejected before
    }
}

/// An elementwise function of one operand.
pub fn unary(cx: &NodeCx, op: UnaryOp, x: &Tensor) -> Result<Tensor, RuntimeError> {
    let d = x.dtype();
    let shape = x.shape();
    let undefined = || cx.err(format!("not defined for {}", x.type_string()));
    match (op, d) {
        (UnaryOp::Not, DType::Bool) => Ok(Tensor::from_bool(shape, x.to_bool_vec().iter().map(|b| !b).collect())),
        (UnaryOp::Not, _) | (_, DType::Bool) => Err(undefined()),
        (_, d) if d.is_float() => {
            let v = x.to_f32_vec().into_iter().map(|e| unary_f32(op, e)).collect();
            Ok(Tensor::from_f32_as(d, shape, v))
        }
        (UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign, d) => {
            let f = |e: i64| match op {
                UnaryOp::Neg => e.wrapping_neg(),
                UnaryOp::Abs => e.wrapping_abs(),
                _ => e.signum(),
            };
            Ok(Tensor::from_i64_as(
                d,
                shape,
                x.to_i64_vec().into_iter().map(f).collect(),
            ))
        }
        _ => Err(undefined()),
    }
}

/// Python's float remainder: the sign of the divisor.
fn rem_f32(a: f32, b: f32) -> f32 {
    let r = a % b;
    if r == 0.0 {
        0.0f32.copysign(b)
    } else if (r < 0.0) != (b < 0.0) {
        r + b
    } else {
        r
    }
}

/// Wrapping integer power by squaring (`e >= 0`).
pub(crate) fn ipow(mut base: i64, mut e: u64) -> i64 {
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

fn compare<T: PartialOrd>(op: BinaryOp, a: T, b: T) -> bool {
    match op {
        BinaryOp::Eq => a == b,
        BinaryOp::Ne => a != b,
        BinaryOp::Lt => a < b,
        BinaryOp::Le => a <= b,
        BinaryOp::Gt => a > b,
        _ => a >= b,
    }
}

fn binary_f32(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Rem => rem_f32(a, b),
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Max => a.max(b),
        _ => a.min(b),
    }
}

fn binary_i64(cx: &NodeCx, op: BinaryOp, a: i64, b: i64) -> Result<i64, RuntimeError> {
    let zero = || RuntimeError::DivisionByZero {
        op: cx.op,
        at: cx.at.clone(),
    };
    Ok(match op {
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div => {
            if b == 0 {
                return Err(zero());
            }
            let q = a.wrapping_div(b);
            if a.wrapping_rem(b) != 0 && ((a < 0) != (b < 0)) {
                q - 1
            } else {
                q
            }
        }
        BinaryOp::Rem => {
            if b == 0 {
                return Err(zero());
            }
            let r = a.wrapping_rem(b);
            if r != 0 && ((r < 0) != (b < 0)) { r + b } else { r }
        }
        BinaryOp::Pow => {
            let e = u64::try_from(b).map_err(|_| cx.err(format!("negative integer exponent {b}")))?;
            ipow(a, e)
        }
        BinaryOp::Max => a.max(b),
        _ => a.min(b),
    })
}

/// An elementwise function of two operands of one dtype, with numpy broadcasting.
pub fn binary(cx: &NodeCx, op: BinaryOp, x: &Tensor, y: &Tensor) -> Result<Tensor, RuntimeError> {
    let d = x.dtype();
    if y.dtype() != d {
        return Err(cx.err(format!(
            "operand dtypes differ: {} and {}",
            x.type_string(),
            y.type_string()
        )));
    }
    let undefined = || cx.err(format!("not defined for {} and {}", x.type_string(), y.type_string()));
    let shape = broadcast(cx, &[x.shape(), y.shape()])?;
    let (mx, my) = (broadcast_map(x.shape(), &shape), broadcast_map(y.shape(), &shape));
    let pairs = mx.iter().zip(&my);
    if op.is_comparison() {
        let out: Vec<bool> = if d.is_float() {
            let (a, b) = (x.to_f32_vec(), y.to_f32_vec());
            pairs.map(|(&i, &j)| compare(op, a[i], b[j])).collect()
        } else if d.is_int() || matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
            let (a, b) = (x.to_i64_vec(), y.to_i64_vec());
            pairs.map(|(&i, &j)| compare(op, a[i], b[j])).collect()
        } else {
            return Err(undefined());
        };
        return Ok(Tensor::from_bool(&shape, out));
    }
    if op.is_logical() {
        if d != DType::Bool {
            return Err(undefined());
        }
        let (a, b) = (x.to_bool_vec(), y.to_bool_vec());
        let f = |p: bool, q: bool| match op {
            BinaryOp::And => p && q,
            BinaryOp::Or => p || q,
            _ => p != q,
        };
        return Ok(Tensor::from_bool(&shape, pairs.map(|(&i, &j)| f(a[i], b[j])).collect()));
    }
    if d.is_float() {
        let (a, b) = (x.to_f32_vec(), y.to_f32_vec());
        let out = pairs.map(|(&i, &j)| binary_f32(op, a[i], b[j])).collect();
        Ok(Tensor::from_f32_as(d, &shape, out))
    } else if d.is_int() {
        let (a, b) = (x.to_i64_vec(), y.to_i64_vec());
        let out = pairs
            .map(|(&i, &j)| binary_i64(cx, op, a[i], b[j]))
            .collect::<Result<_, _>>()?;
        Ok(Tensor::from_i64_as(d, &shape, out))
    } else {
        Err(undefined())
    }
}

/// `select(cond, a, b)`: `a` where `cond` is true, else `b`, with broadcasting.
pub fn select(cx: &NodeCx, c: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor, RuntimeError> {
    if c.dtype() != DType::Bool {
        return Err(cx.err(format!("the condition must be bool, got {}", c.type_string())));
    }
    let shape = broadcast(cx, &[c.shape(), a.shape(), b.shape()])?;
    let both = concat_data(cx, &[a, b])?;
    let cond = c.to_bool_vec();
    let (mc, ma, mb) = (
        broadcast_map(c.shape(), &shape),
        broadcast_map(a.shape(), &shape),
        broadcast_map(b.shape(), &shape),
    );
    let idx: Vec<usize> = (0..mc.len())
        .map(|i| if cond[mc[i]] { ma[i] } else { a.numel() + mb[i] })
        .collect();
    pick_data(cx, &both, &idx, shape)
}
