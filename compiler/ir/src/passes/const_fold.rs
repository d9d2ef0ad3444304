//! `const-fold`: elementwise ops on small constants become constants.
//!
//! The arithmetic is the IR's own: `f32` is computed in `f32`; integers wrap in their dtype,
//! `div` is floor division and `rem` takes the divisor's sign (as in Python); `bool` is logic.
//! Anything whose result is not pinned down is left alone: integer division or remainder by
//! zero, float `rem` by zero, negative integer powers, `max`/`min` of NaN or of `0.0` and
//! `-0.0`, float-to-integer casts of NaN, infinities or out-of-range values, and `erf` (Rust's
//! std has none); `f16`/`bf16` are never folded. `round` rounds half to even, as the reference
//! interpreter does.

use std::cmp::Ordering;

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use super::{Pass, const_of, remove_if_dead};
use crate::dtype::DType;
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, Literal, LiteralData, Op, UnaryOp};

/// Folds `unary`, `binary`, `select` and `cast` nodes whose operands are all `const` literals of
/// at most 4096 elements, with a static result of at most as many.
pub struct ConstFold;

/// The largest literal (operand or result) that is folded.
const MAX_ELEMENTS: u64 = 4096;

impl Pass for ConstFold {
    fn name(&self) -> &'static str {
        "const-fold"
    }

    fn run(&self, g: &mut Graph) -> bool {
        let Ok(order) = g.topo_order() else { return false };
        let mut changed = false;
        for n in order {
            let Some(lit) = fold(g, n) else { continue };
            let sources: Vec<NodeId> = g.operands(n).iter().map(|v| v.node).collect();
            let edges: Vec<_> = g.dag.edges_directed(n, Direction::Incoming).map(|e| e.id()).collect();
            for e in edges {
                g.dag.remove_edge(e);
            }
            g.dag[n].op = Op::Const(lit);
            for s in sources {
                remove_if_dead(g, s);
            }
            changed = true;
        }
        changed
    }
}

/// A scalar of a foldable dtype.
#[derive(Clone, Copy, Debug, PartialEq)]
enum S {
    F(f32),
    I(i64),
    B(bool),
}

fn foldable(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I32 | DType::I64 | DType::Bool)
}

/// The folded literal of node `n`, if it folds.
fn fold(g: &Graph, n: NodeId) -> Option<Literal> {
    let node = &g.dag[n];
    let [out] = node.outputs.as_slice() else { return None };
    if !matches!(node.op, Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast(_)) || !foldable(out.dtype) {
        return None;
    }
    let shape: Vec<u64> = out
        .shape
        .iter()
        .map(|d| d.as_const().and_then(|c| u64::try_from(c).ok()))
        .collect::<Option<_>>()?;
    let numel = shape.iter().try_fold(1u64, |a, b| a.checked_mul(*b))?;
    if numel > MAX_ELEMENTS {
        return None;
    }
    let lits: Vec<&Literal> = g
        .operands(n)
        .into_iter()
        .map(|v| const_of(g, v))
        .collect::<Option<_>>()?;
    for l in &lits {
        let count = l.shape.iter().try_fold(1u64, |a, b| a.checked_mul(*b))?;
        if !foldable(l.dtype) || count > MAX_ELEMENTS || count as usize != l.len() || l.shape.len() > shape.len() {
            return None;
        }
    }
    let dt = lits.last()?.dtype;
    let mut data = Vec::with_capacity(numel as usize);
    for i in 0..numel {
        let args: Vec<S> = lits.iter().map(|l| element(l, &shape, i)).collect::<Option<_>>()?;
        let r = match (&node.op, args.as_slice()) {
            (Op::Unary(u), [x]) => unary(*u, dt, *x)?,
            (Op::Binary(b), [x, y]) => binary(*b, dt, *x, *y)?,
            (Op::Select, [S::B(c), a, b]) => {
                if *c {
                    *a
                } else {
                    *b
                }
            }
            (Op::Cast(to), [x]) => cast(*x, *to)?,
            _ => return None,
        };
        data.push(r);
    }
    let data = match out.dtype {
        DType::F32 => LiteralData::Float(
            data.iter()
                .map(|s| if let S::F(x) = s { Some(*x as f64) } else { None })
                .collect::<Option<_>>()?,
        ),
        DType::Bool => LiteralData::Bool(
            data.iter()
                .map(|s| if let S::B(x) = s { Some(*x) } else { None })
                .collect::<Option<_>>()?,
        ),
        _ => LiteralData::Int(
            data.iter()
                .map(|s| if let S::I(x) = s { Some(*x) } else { None })
                .collect::<Option<_>>()?,
        ),
    };
    Some(Literal {
        dtype: out.dtype,
        shape,
        data,
    })
}

/// Element `flat` of the broadcast of `lit` to `out` (right-aligned; size-1 axes repeat).
fn element(lit: &Literal, out: &[u64], flat: u64) -> Option<S> {
    let offset = out.len() - lit.shape.len();
    let (mut rem, mut index, mut stride) = (flat, 0u64, 1u64);
    for (axis, &n) in out.iter().enumerate().rev() {
        let coord = rem % n.max(1);
        rem /= n.max(1);
        if axis >= offset {
            let m = lit.shape[axis - offset];
            if m != 1 && m != n {
                return None;
            }
            index += if m == 1 { 0 } else { coord * stride };
            stride *= m;
        }
    }
    let i = index as usize;
    match &lit.data {
        LiteralData::Float(v) => v.get(i).map(|x| S::F(*x as f32)),
        LiteralData::Int(v) => v.get(i).map(|x| S::I(*x)),
        LiteralData::Bool(v) => v.get(i).map(|x| S::B(*x)),
    }
}

/// Wraps an integer result to its dtype.
fn wrap(dt: DType, v: i64) -> S {
    S::I(if dt == DType::I32 { v as i32 as i64 } else { v })
}

fn unary(u: UnaryOp, dt: DType, x: S) -> Option<S> {
    use UnaryOp::*;
    Some(match x {
        S::F(x) => S::F(match u {
            Neg => -x,
            Abs => x.abs(),
            Exp => x.exp(),
            Log => x.ln(),
            Sqrt => x.sqrt(),
            Rsqrt => 1.0 / x.sqrt(),
            Recip => 1.0 / x,
            Tanh => x.tanh(),
            Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Sin => x.sin(),
            Cos => x.cos(),
            Floor => x.floor(),
            Ceil => x.ceil(),
            Sign if x > 0.0 => 1.0,
            Sign if x < 0.0 => -1.0,
            Sign => x,
            Round => x.round_ties_even(),
            Erf | Not => return None,
        }),
        S::I(x) => match u {
            Neg => wrap(dt, x.wrapping_neg()),
            Abs => wrap(dt, x.wrapping_abs()),
            Sign => S::I(x.signum()),
            _ => return None,
        },
        S::B(x) => match u {
            Not => S::B(!x),
            _ => return None,
        },
    })
}

fn binary(b: BinaryOp, dt: DType, x: S, y: S) -> Option<S> {
    use BinaryOp::*;
    let ord = |o: Option<Ordering>| {
        Some(S::B(match b {
            Eq => o == Some(Ordering::Equal),
            Ne => o != Some(Ordering::Equal),
            Lt => o == Some(Ordering::Less),
            Le => matches!(o, Some(Ordering::Less | Ordering::Equal)),
            Gt => o == Some(Ordering::Greater),
            Ge => matches!(o, Some(Ordering::Greater | Ordering::Equal)),
            _ => return None,
        }))
    };
    match (x, y) {
        (S::F(x), S::F(y)) => Some(S::F(match b {
            Add => x + y,
            Sub => x - y,
            Mul => x * y,
            Div => x / y,
            Rem if y == 0.0 => return None,
            Rem => {
                let r = x % y;
                if r == 0.0 {
                    0.0f32.copysign(y)
                } else if (r < 0.0) != (y < 0.0) {
                    r + y
                } else {
                    r
                }
            }
            Pow => x.powf(y),
            Max | Min if x.is_nan() || y.is_nan() || (x == y && x.to_bits() != y.to_bits()) => return None,
            Max => x.max(y),
            Min => x.min(y),
            _ => return ord(x.partial_cmp(&y)),
        })),
        (S::I(x), S::I(y)) => match b {
            Add => Some(wrap(dt, x.wrapping_add(y))),
            Sub => Some(wrap(dt, x.wrapping_sub(y))),
            Mul => Some(wrap(dt, x.wrapping_mul(y))),
            Div if y == 0 => None,
            Div => {
                let (q, r) = (x.wrapping_div(y), x.wrapping_rem(y));
                Some(wrap(dt, if r != 0 && (r < 0) != (y < 0) { q - 1 } else { q }))
            }
            Rem if y == 0 => None,
            Rem => {
                let r = x.wrapping_rem(y);
                Some(wrap(dt, if r != 0 && (r < 0) != (y < 0) { r + y } else { r }))
            }
            Pow => Some(wrap(dt, x.wrapping_pow(u32::try_from(y).ok()?))),
            Max => Some(S::I(x.max(y))),
            Min => Some(S::I(x.min(y))),
            And | Or | Xor => None,
            _ => ord(Some(x.cmp(&y))),
        },
        (S::B(x), S::B(y)) => Some(S::B(match b {
            And => x && y,
            Or => x || y,
            Xor | Ne => x != y,
            Eq => x == y,
            _ => return None,
        })),
        _ => None,
    }
}

fn cast(x: S, to: DType) -> Option<S> {
    Some(match (x, to) {
        (S::F(x), DType::F32) => S::F(x),
        (S::F(x), DType::I32 | DType::I64) => {
            let t = x.trunc();
            let limit = if to == DType::I32 { 2f32.powi(31) } else { 2f32.powi(63) };
            if !(t >= -limit && t < limit) {
                return None;
            }
            S::I(t as i64)
        }
        (S::F(x), DType::Bool) => S::B(x != 0.0),
        (S::I(x), DType::F32) => S::F(x as f32),
        (S::I(x), DType::I32 | DType::I64) => wrap(to, x),
        (S::I(x), DType::Bool) => S::B(x != 0),
        (S::B(x), DType::F32) => S::F(if x { 1.0 } else { 0.0 }),
        (S::B(x), DType::I32 | DType::I64) => S::I(x as i64),
        (S::B(x), DType::Bool) => S::B(x),
        _ => return None,
    })
}
