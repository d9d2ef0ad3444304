//! The primitive operations of the Graph IR.
//!
//! The set is deliberately small: everything a model needs (layer norm, attention, GELU, LSTM
//! cells) is composed from these in the standard library, and fusion later recognises the
//! compositions that deserve hand-written kernels.

use crate::dtype::DType;
use crate::graph::Graph;
use crate::shape::{Dim, Shape};

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Recip,
    Tanh,
    Sigmoid,
    Erf,
    Sin,
    Cos,
    Floor,
    Ceil,
    Round,
    Sign,
    /// Logical not; bool only.
    Not,
}

/// Elementwise functions of two operands (with broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Floor division for integers (as in Python), true division for floats.
    Div,
    /// Remainder with the sign of the divisor (as in Python).
    Rem,
    Pow,
    Max,
    Min,
    And,
    Or,
    Xor,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    Sum,
    Prod,
    Max,
    Min,
    /// True if any element is true; bool only.
    Any,
    /// True if all elements are true; bool only.
    All,
}

/// Index-producing reductions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArgOp {
    ArgMax,
    ArgMin,
}

/// A constant tensor with a static shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: LiteralData,
}

/// The elements of a [`Literal`], row-major. Equality is bitwise for floats, so a literal with
/// a NaN equals itself (and `0.0` differs from `-0.0`): it compares programs, not numbers.
#[derive(Clone, Debug)]
pub enum LiteralData {
    /// Float dtypes; values are exactly representable in the literal's dtype.
    Float(Vec<f64>),
    /// Integer dtypes.
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

impl PartialEq for LiteralData {
    fn eq(&self, other: &LiteralData) -> bool {
        match (self, other) {
            (LiteralData::Float(a), LiteralData::Float(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (LiteralData::Int(a), LiteralData::Int(b)) => a == b,
            (LiteralData::Bool(a), LiteralData::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Literal {
    /// A scalar float literal of the given float dtype. For `f32` the value is rounded to the
    /// nearest `f32`, so that it is exactly representable (the verifier checks this).
    pub fn float(dtype: DType, v: f64) -> Literal {
        let v = if dtype == DType::F32 { v as f32 as f64 } else { v };
        Literal {
            dtype,
            shape: vec![],
            data: LiteralData::Float(vec![v]),
        }
    }
    /// A scalar integer literal.
    pub fn int(dtype: DType, v: i64) -> Literal {
        Literal {
            dtype,
            shape: vec![],
            data: LiteralData::Int(vec![v]),
        }
    }
    /// A scalar bool literal.
    pub fn bool(v: bool) -> Literal {
        Literal {
            dtype: DType::Bool,
            shape: vec![],
            data: LiteralData::Bool(vec![v]),
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            LiteralData::Float(v) => v.len(),
            LiteralData::Int(v) => v.len(),
            LiteralData::Bool(v) => v.len(),
        }
    }
    /// True when the literal has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A loop: its body is a graph of its own.
///
/// Operands of the loop node: the initial carried values, then the captured outer values.
/// Body inputs: the iteration index (`i64[]`), the carried values, the captured values.
/// Body outputs: the next carried values, then (if `has_stop`) a `bool[]` that ends the loop
/// when true, then the per-iteration emitted values.
/// Results of the loop node: the final carried values, then each emitted value stacked along a
/// new leading axis of length `trips` (rows of iterations that did not run, after a stop, are
/// zero).
#[derive(Clone, Debug, PartialEq)]
pub struct LoopOp {
    /// The number of iterations (static, or symbolic such as `N`).
    pub trips: Dim,
    /// A static upper bound on `trips`, checked at run time.
    pub max_trips: u64,
    pub n_carried: usize,
    pub has_stop: bool,
    pub n_emit: usize,
    pub body: Graph,
}

/// A Graph IR operation. Axes are always normalised to be non-negative.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// An input of the function; its name is in [`Graph::inputs`] order.
    Input {
        name: String,
    },
    /// A weight, by its full dotted name (`layers.0.attn.wq.weight`).
    Param {
        name: String,
    },
    Const(Literal),
    /// The run-time value of a dimension expression, as an `i64[]` scalar.
    DimSize(Dim),
    Unary(UnaryOp),
    Binary(BinaryOp),
    /// `select(cond, a, b)` with broadcasting.
    Select,
    Cast(DType),
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
        keepdim: bool,
    },
    ArgReduce {
        op: ArgOp,
        axis: usize,
        keepdim: bool,
    },
    Reshape(Shape),
    Permute(Vec<usize>),
    /// Broadcast to a shape (size-1 axes grow; leading axes may be added).
    Expand(Shape),
    /// Static slice `start..end` by `step` along one axis (`start`, `end` already clamped).
    Slice {
        axis: usize,
        start: Dim,
        end: Dim,
        step: u64,
    },
    Concat {
        axis: usize,
    },
    Pad {
        axis: usize,
        before: u64,
        after: u64,
        value: f64,
    },
    /// Batched matrix product `[..., M, K] @ [..., K, N]` with broadcast batch axes.
    MatMul,
    /// `out[i][j][k] = x[i][idx[i][j][k]][k]` for axis 1 (take along axis); `idx` has the rank of `x`.
    Gather {
        axis: usize,
    },
    /// Index select: `x.shape[..axis] ++ idx.shape ++ x.shape[axis+1..]`.
    Take {
        axis: usize,
    },
    /// `out = x; out[i][idx[i][j][k]][k] = src[i][j][k]` for axis 1; later writes win.
    Scatter {
        axis: usize,
    },
    /// Operands `(x, start: i64[])`: `size` elements from `start` (clamped) along `axis`.
    DynamicSlice {
        axis: usize,
        size: Dim,
    },
    /// Operands `(x, update, start: i64[])`: writes `update` at `start` (clamped) along `axis`.
    DynamicUpdateSlice {
        axis: usize,
    },
    /// `0, 1, 2, ...` along `axis`, broadcast over the other axes.
    Iota {
        shape: Shape,
        axis: usize,
        dtype: DType,
    },
    Cumsum {
        axis: usize,
        exclusive: bool,
        reverse: bool,
    },
    /// The `k` largest (or smallest) values along `axis`, sorted, and their `i64` indices;
    /// ties go to the lower index.
    TopK {
        k: Dim,
        axis: usize,
        largest: bool,
    },
    /// Operands `(seed: i64[], offset: i64[])`: uniform `f32` in `[0, 1)` from Philox-4x32-10.
    RngUniform {
        shape: Shape,
    },
    Loop(Box<LoopOp>),
}

impl Op {
    /// The op's mnemonic in the IR text form.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Param { .. } => "param",
            Op::Const(_) => "const",
            Op::DimSize(_) => "dim",
            Op::Unary(u) => match u {
                UnaryOp::Neg => "neg",
                UnaryOp::Abs => "abs",
                UnaryOp::Exp => "exp",
                UnaryOp::Log => "log",
                UnaryOp::Sqrt => "sqrt",
                UnaryOp::Rsqrt => "rsqrt",
                UnaryOp::Recip => "recip",
                UnaryOp::Tanh => "tanh",
                UnaryOp::Sigmoid => "sigmoid",
                UnaryOp::Erf => "erf",
                UnaryOp::Sin => "sin",
                UnaryOp::Cos => "cos",
                UnaryOp::Floor => "floor",
                UnaryOp::Ceil => "ceil",
                UnaryOp::Round => "round",
                UnaryOp::Sign => "sign",
                UnaryOp::Not => "not",
            },
            Op::Binary(b) => match b {
                BinaryOp::Add => "add",
                BinaryOp::Sub => "sub",
                BinaryOp::Mul => "mul",
                BinaryOp::Div => "div",
                BinaryOp::Rem => "rem",
                BinaryOp::Pow => "pow",
                BinaryOp::Max => "max",
                BinaryOp::Min => "min",
                BinaryOp::And => "and",
                BinaryOp::Or => "or",
                BinaryOp::Xor => "xor",
                BinaryOp::Eq => "eq",
                BinaryOp::Ne => "ne",
                BinaryOp::Lt => "lt",
                BinaryOp::Le => "le",
                BinaryOp::Gt => "gt",
                BinaryOp::Ge => "ge",
            },
            Op::Select => "select",
            Op::Cast(_) => "cast",
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "reduce_sum",
                ReduceOp::Prod => "reduce_prod",
                ReduceOp::Max => "reduce_max",
                ReduceOp::Min => "reduce_min",
                ReduceOp::Any => "reduce_any",
                ReduceOp::All => "reduce_all",
            },
            Op::ArgReduce { op, .. } => match op {
                ArgOp::ArgMax => "argmax",
                ArgOp::ArgMin => "argmin",
            },
            Op::Reshape(_) => "reshape",
            Op::Permute(_) => "permute",
            Op::Expand(_) => "expand",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::Pad { .. } => "pad",
            Op::MatMul => "matmul",
            Op::Gather { .. } => "gather",
            Op::Take { .. } => "take",
            Op::Scatter { .. } => "scatter",
            Op::DynamicSlice { .. } => "dynamic_slice",
            Op::DynamicUpdateSlice { .. } => "dynamic_update_slice",
            Op::Iota { .. } => "iota",
            Op::Cumsum { .. } => "cumsum",
            Op::TopK { .. } => "topk",
            Op::RngUniform { .. } => "rng_uniform",
            Op::Loop(_) => "loop",
        }
    }

    /// All unary ops, for parsers and tests.
    pub const UNARY: [UnaryOp; 17] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Recip,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Erf,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::Sign,
        UnaryOp::Not,
    ];

    /// All binary ops, for parsers and tests.
    pub const BINARY: [BinaryOp; 17] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Rem,
        BinaryOp::Pow,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Xor,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
    ];

    /// True for ops without side effects whose result depends only on operands and attributes
    /// (everything: RNG is counter-based, so it is pure too). Inputs and params are leaves.
    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Op::Input { .. } | Op::Param { .. } | Op::Const(_) | Op::DimSize(_) | Op::Iota { .. }
        )
    }
}

impl BinaryOp {
    /// Comparisons produce `bool`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }
    /// Logical ops take and produce `bool`.
    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Xor)
    }
}
