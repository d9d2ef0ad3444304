//! The Kernel IR: backend-neutral loop nests over an index space.
//!
//! Fusion turns groups of Graph IR nodes into [`KernelFn`]s: loops over index variables, scalar
//! loads and stores at computed offsets, scalar arithmetic, and accumulators for reductions.
//! Every backend (Cranelift, PTX, MLIR) consumes this IR, so nothing here is CPU-specific: a
//! kernel says *what* each index computes; a backend decides vector width, unrolling and how the
//! parallel loop is spread over threads or thread blocks.
//!
//! Calling convention (every backend): a kernel receives the base addresses of its buffers (in
//! [`KernelFn::bufs`] order), the values of its dims (in [`KernelFn::dims`] order, `i64`), and a
//! half-open range `lo..hi` of its parallel index (see [`KernelFn::parallel`]). Buffers are dense
//! row-major arrays of their dtype; every index below is an element offset.

mod hoist;
mod idiom;
mod print;
mod recip;
mod reuse;

pub use hoist::hoist_invariants;
pub use idiom::{RowLayerNorm, RowSoftmax, row_layer_norm, row_softmax};
pub use print::print_kernel;
pub use recip::reciprocal_of_invariant_divisors;
pub use reuse::reuse_reduction_terms;

use crate::dtype::DType;
use crate::op::{BinaryOp, UnaryOp};

/// An `i64` index expression: constants, loop variables, the kernel's run-time dims.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IExpr {
    Const(i64),
    /// A loop variable (or the parallel index), by id.
    Var(u32),
    /// The run-time value of `KernelFn::dims[i]`.
    Dim(u32),
    Add(Box<IExpr>, Box<IExpr>),
    Mul(Box<IExpr>, Box<IExpr>),
    /// Floor division; both operands are non-negative wherever the kernel evaluates it.
    Div(Box<IExpr>, Box<IExpr>),
    /// Remainder; both operands are non-negative wherever the kernel evaluates it.
    Rem(Box<IExpr>, Box<IExpr>),
}

/// A scalar constant. Two constants are equal when they have the same dtype and the same bits,
/// so `0.0` and `-0.0` differ and a NaN equals itself: kernels that compare equal compute the
/// same values, which is what deduplication and common-subexpression reuse rely on.
#[derive(Clone, Copy, Debug)]
pub enum Scalar {
    F32(f32),
    I32(i32),
    I64(i64),
    Bool(bool),
}

impl Scalar {
    /// The dtype and the bits of the value, which identify the constant.
    fn identity(self) -> (DType, u64) {
        let bits = match self {
            Scalar::F32(x) => u64::from(x.to_bits()),
            Scalar::I32(x) => u64::from(x as u32),
            Scalar::I64(x) => x as u64,
            Scalar::Bool(x) => u64::from(x),
        };
        (self.dtype(), bits)
    }

    /// The dtype of the constant.
    pub fn dtype(self) -> DType {
        match self {
            Scalar::F32(_) => DType::F32,
            Scalar::I32(_) => DType::I32,
            Scalar::I64(_) => DType::I64,
            Scalar::Bool(_) => DType::Bool,
        }
    }
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Scalar) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Scalar {}

impl std::hash::Hash for Scalar {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// A scalar value expression. Kernels compute in f32, i32, i64 and bool; the semantics of each
/// op are the Graph IR's (see [`crate::op`]) applied to one element.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VExpr {
    /// Element `index` of buffer `buf`.
    Load {
        buf: u32,
        index: IExpr,
    },
    Const(Scalar),
    /// A `let` or accumulator variable, by id.
    Var(u32),
    /// An index expression as an `i64` value (iota, dims used as values).
    Index(IExpr),
    Unary(UnaryOp, Box<VExpr>),
    Binary(BinaryOp, Box<VExpr>, Box<VExpr>),
    /// `cond ? a : b`
    Select(Box<VExpr>, Box<VExpr>, Box<VExpr>),
    Cast(DType, Box<VExpr>),
}

/// A statement.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KStmt {
    /// `for var in 0..extent { body }`. `vectorize` marks an innermost loop whose iterations are
    /// independent and whose loads and stores move by 0 or 1 element per iteration, so a backend
    /// may run it several lanes at a time.
    Loop {
        var: u32,
        extent: IExpr,
        vectorize: bool,
        body: Vec<KStmt>,
    },
    /// An immutable scalar.
    Let { var: u32, dtype: DType, value: VExpr },
    /// A mutable scalar (an accumulator), live until the end of the enclosing block.
    Acc { var: u32, dtype: DType, init: VExpr },
    /// Updates an accumulator.
    Assign { var: u32, value: VExpr },
    /// Writes element `index` of buffer `buf`. A kernel may load an element of a buffer it
    /// writes after storing it (see [`reuse_reduction_terms`]).
    Store { buf: u32, index: IExpr, value: VExpr },
}

/// Whether a kernel reads or writes a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

/// A buffer parameter of a kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct KBuf {
    pub name: String,
    pub dtype: DType,
    pub access: Access,
}

/// A kernel: `for p in lo..hi { body }` where `p` is the parallel index.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelFn {
    pub name: String,
    pub bufs: Vec<KBuf>,
    /// Names of the run-time dims the kernel reads (`IExpr::Dim(i)` is `dims[i]`).
    pub dims: Vec<String>,
    /// The parallel index variable and its full extent; iterations are independent. The caller
    /// splits `0..extent` into ranges (one per thread, or one per block on a GPU).
    pub parallel: (u32, IExpr),
    pub body: Vec<KStmt>,
}

/// What a kernel's code depends on: all of [`KernelFn`] but the names of the kernel, its buffers
/// and its dims. Kernels with equal keys compute the same function of their arguments, so a
/// backend may compile one and call it for all of them (a model's repeated layers plan many
/// kernels that differ only in the buffers they are given).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CodeKey<'a> {
    bufs: Vec<(DType, Access)>,
    dims: usize,
    parallel: &'a (u32, IExpr),
    body: &'a [KStmt],
}

impl IExpr {
    /// Evaluates with loop variables and dims given by the closures.
    pub fn eval(&self, var: &impl Fn(u32) -> i64, dim: &impl Fn(u32) -> i64) -> i64 {
        match self {
            IExpr::Const(c) => *c,
            IExpr::Var(v) => var(*v),
            IExpr::Dim(d) => dim(*d),
            IExpr::Add(a, b) => a.eval(var, dim).wrapping_add(b.eval(var, dim)),
            IExpr::Mul(a, b) => a.eval(var, dim).wrapping_mul(b.eval(var, dim)),
            IExpr::Div(a, b) => a.eval(var, dim).checked_div(b.eval(var, dim)).unwrap_or(0),
            IExpr::Rem(a, b) => a.eval(var, dim).checked_rem(b.eval(var, dim)).unwrap_or(0),
        }
    }

    /// True if the expression does not mention loop variable `v`.
    pub fn independent_of(&self, v: u32) -> bool {
        match self {
            IExpr::Const(_) | IExpr::Dim(_) => true,
            IExpr::Var(x) => *x != v,
            IExpr::Add(a, b) | IExpr::Mul(a, b) | IExpr::Div(a, b) | IExpr::Rem(a, b) => {
                a.independent_of(v) && b.independent_of(v)
            }
        }
    }
}

/// `a + b`, simplified: constants fold, and a multi-index split from a flat index and
/// flattened again gives the flat index back: `(x / n) * n + x % n` is `x`, and
/// `(a + x / n) * n + x % n` is `a * n + x` (the outer axes of a row-major offset, as
/// `linearize` builds it, are the left operand of the inner sum).
impl std::ops::Add for IExpr {
    type Output = IExpr;

    fn add(self, b: IExpr) -> IExpr {
        if let (IExpr::Mul(s, n1), IExpr::Rem(x, n2)) = (&self, &b)
            && n1 == n2
        {
            let is_quotient = |q: &IExpr| matches!(q, IExpr::Div(x1, n0) if x1 == x && n0 == n1);
            if is_quotient(s) {
                return x.as_ref().clone();
            }
            if let IExpr::Add(a, q) = s.as_ref()
                && is_quotient(q)
            {
                return a.as_ref().clone() * n1.as_ref().clone() + x.as_ref().clone();
            }
        }
        match (self, b) {
            (IExpr::Const(0), x) | (x, IExpr::Const(0)) => x,
            (IExpr::Const(x), IExpr::Const(y)) => IExpr::Const(x + y),
            (x, y) => IExpr::Add(Box::new(x), Box::new(y)),
        }
    }
}

/// `a * b`, with constants folded and multiplications by 0 and 1 removed.
impl std::ops::Mul for IExpr {
    type Output = IExpr;

    fn mul(self, b: IExpr) -> IExpr {
        match (self, b) {
            (IExpr::Const(0), _) | (_, IExpr::Const(0)) => IExpr::Const(0),
            (IExpr::Const(1), x) | (x, IExpr::Const(1)) => x,
            (IExpr::Const(x), IExpr::Const(y)) => IExpr::Const(x * y),
            (x, y) => IExpr::Mul(Box::new(x), Box::new(y)),
        }
    }
}

/// `a / b` (floor division of non-negative values), with constants folded.
impl std::ops::Div for IExpr {
    type Output = IExpr;

    fn div(self, b: IExpr) -> IExpr {
        match (self, b) {
            (x, IExpr::Const(1)) => x,
            (IExpr::Const(x), IExpr::Const(y)) if y > 0 => IExpr::Const(x.div_euclid(y)),
            (x, y) => IExpr::Div(Box::new(x), Box::new(y)),
        }
    }
}

/// `a % b` (of non-negative values), with constants folded.
impl std::ops::Rem for IExpr {
    type Output = IExpr;

    fn rem(self, b: IExpr) -> IExpr {
        match (self, b) {
            (_, IExpr::Const(1)) => IExpr::Const(0),
            (IExpr::Const(x), IExpr::Const(y)) if y > 0 => IExpr::Const(x.rem_euclid(y)),
            (x, y) => IExpr::Rem(Box::new(x), Box::new(y)),
        }
    }
}

impl KStmt {
    /// The statement's own expression: a `let`'s or assignment's value, a store's value, an
    /// accumulator's initial value; `None` for a loop (whose body has its own).
    pub fn expr(&self) -> Option<&VExpr> {
        match self {
            KStmt::Let { value, .. } | KStmt::Assign { value, .. } | KStmt::Store { value, .. } => Some(value),
            KStmt::Acc { init, .. } => Some(init),
            KStmt::Loop { .. } => None,
        }
    }

    /// [`KStmt::expr`], for rewriting.
    pub fn expr_mut(&mut self) -> Option<&mut VExpr> {
        match self {
            KStmt::Let { value, .. } | KStmt::Assign { value, .. } | KStmt::Store { value, .. } => Some(value),
            KStmt::Acc { init, .. } => Some(init),
            KStmt::Loop { .. } => None,
        }
    }
}

impl VExpr {
    /// The operands of this node, in order.
    pub fn operands(&self) -> Vec<&VExpr> {
        match self {
            VExpr::Load { .. } | VExpr::Const(_) | VExpr::Var(_) | VExpr::Index(_) => Vec::new(),
            VExpr::Unary(_, x) | VExpr::Cast(_, x) => vec![x],
            VExpr::Binary(_, a, b) => vec![a, b],
            VExpr::Select(c, a, b) => vec![c, a, b],
        }
    }

    /// The operands of this node, in order, for rewriting.
    pub fn operands_mut(&mut self) -> Vec<&mut VExpr> {
        match self {
            VExpr::Load { .. } | VExpr::Const(_) | VExpr::Var(_) | VExpr::Index(_) => Vec::new(),
            VExpr::Unary(_, x) | VExpr::Cast(_, x) => vec![x],
            VExpr::Binary(_, a, b) => vec![a, b],
            VExpr::Select(c, a, b) => vec![c, a, b],
        }
    }

    /// For `op(a, b)` (a commutative `op`): what `pick` finds in an operand, `a` tried first,
    /// and the other operand.
    pub fn operand_where<'a, T>(
        &'a self,
        op: BinaryOp,
        pick: impl Fn(&'a VExpr) -> Option<T>,
    ) -> Option<(T, &'a VExpr)> {
        let VExpr::Binary(o, a, b) = self else {
            return None;
        };
        if *o != op {
            return None;
        }
        match pick(a) {
            Some(t) => Some((t, b)),
            None => pick(b).map(|t| (t, a.as_ref())),
        }
    }

    /// True when `pred` holds for this expression or any subexpression.
    pub fn any(&self, pred: &impl Fn(&VExpr) -> bool) -> bool {
        pred(self) || self.operands().into_iter().any(|x| x.any(pred))
    }

    /// Calls `f` on this expression and every subexpression, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&VExpr)) {
        f(self);
        for x in self.operands() {
            x.visit(f);
        }
    }

    /// Calls `f` on this expression and then on every subexpression of what `f` left, parents
    /// first (a node `f` replaces is not visited again, its new operands are).
    pub fn visit_mut(&mut self, f: &mut impl FnMut(&mut VExpr)) {
        f(self);
        for x in self.operands_mut() {
            x.visit_mut(f);
        }
    }
}

impl KernelFn {
    /// The kernel's [`CodeKey`].
    pub fn code_key(&self) -> CodeKey<'_> {
        CodeKey {
            bufs: self.bufs.iter().map(|b| (b.dtype, b.access)).collect(),
            dims: self.dims.len(),
            parallel: &self.parallel,
            body: &self.body,
        }
    }

    /// The dtype a value expression computes, given the kernel's buffers and the dtypes of the
    /// variables in scope.
    pub fn dtype_of(&self, e: &VExpr, var_dtype: &impl Fn(u32) -> DType) -> DType {
        match e {
            VExpr::Load { buf, .. } => self.bufs[*buf as usize].dtype,
            VExpr::Const(s) => s.dtype(),
            VExpr::Var(v) => var_dtype(*v),
            VExpr::Index(_) => DType::I64,
            VExpr::Unary(_, x) => self.dtype_of(x, var_dtype),
            VExpr::Binary(op, a, _) => {
                if op.is_comparison() {
                    DType::Bool
                } else {
                    self.dtype_of(a, var_dtype)
                }
            }
            VExpr::Select(_, a, _) => self.dtype_of(a, var_dtype),
            VExpr::Cast(d, _) => *d,
        }
    }
}
