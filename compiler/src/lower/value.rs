//! Values during lowering: static values known at compile time (hyperparameters, dims, dtypes,
//! lists) and tensors in the graph being built.

use mlc_dsl::Span;
use mlc_ir::{DType, Dim, Value};

/// A tensor value: a result in the graph of loop nesting `level` (0 is the function body).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TVal {
    pub level: usize,
    pub v: Value,
}

/// Index of a block instance in the lowering's instance table.
pub type InstId = usize;

/// A value of the language during lowering.
#[derive(Clone, Debug)]
pub enum Val {
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    /// A symbolic (or constant-valued) dimension such as `B` or `N + 1`.
    Dim(Dim),
    DType(DType),
    Tensor(TVal),
    /// `(a, b)`: results of functions with several values.
    Tuple(Vec<Val>),
    /// `[a, b]`: shapes, axes, tensors to concatenate.
    List(Vec<Val>),
    /// A block instance.
    Inst(InstId),
    /// A `repeat` stack, or the part `start..end` of one.
    Stack {
        insts: Vec<InstId>,
    },
    /// A method of an instance, not yet called.
    Method {
        inst: InstId,
        name: String,
    },
    /// A top-level `fn` item.
    Func(mlc_dsl::loader::ItemRef),
    /// A built-in function.
    Builtin(&'static str),
}

impl Val {
    /// A short description for error messages (`int 3`, `tensor`, `block instance`).
    pub fn kind(&self) -> String {
        match self {
            Val::Int(i) => format!("the integer {i}"),
            Val::Float(f) => format!("the float {f:?}"),
            Val::Bool(b) => format!("the bool {b}"),
            Val::None => "None".into(),
            Val::Dim(d) => format!("the dimension {d}"),
            Val::DType(d) => format!("the dtype {d}"),
            Val::Tensor(_) => "a tensor".into(),
            Val::Tuple(v) => format!("a tuple of {}", v.len()),
            Val::List(v) => format!("a list of {}", v.len()),
            Val::Inst(_) => "a block instance".into(),
            Val::Stack { insts } => format!("a stack of {} layers", insts.len()),
            Val::Method { name, .. } => format!("the method `{name}`"),
            Val::Func(_) => "a function".into(),
            Val::Builtin(n) => format!("the built-in `{n}`"),
        }
    }

    /// A static integer, also from a constant dim.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Dim(d) => d.as_const(),
            _ => None,
        }
    }

    /// A static dim (an int or a dim value).
    pub fn as_dim(&self) -> Option<Dim> {
        match self {
            Val::Int(i) => Some(Dim::c(*i)),
            Val::Dim(d) => Some(d.clone()),
            _ => None,
        }
    }

    /// Normalises a dim that became constant into an int.
    pub fn from_dim(d: Dim) -> Val {
        match d.as_const() {
            Some(c) => Val::Int(c),
            None => Val::Dim(d),
        }
    }
}

/// A call argument after evaluation.
#[derive(Clone, Debug)]
pub struct ArgVal {
    pub name: Option<String>,
    pub val: Val,
    pub span: Span,
}

/// A static number or bool on its way into a constant tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
}
