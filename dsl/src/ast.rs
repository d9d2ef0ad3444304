//! The abstract syntax tree of a `.dsl` file. Every node carries the [`Span`] of the source text
//! it came from, so that later stages (elaboration, shape inference) can point at it.

use crate::source::Span;

/// A name as written in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One parsed `.dsl` file.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(Import),
    Fn(FnDef),
    Block(BlockDef),
}

/// Where an import points.
#[derive(Clone, Debug, PartialEq)]
pub enum ImportTarget {
    /// `import std.nn`: a module of the embedded standard library (`dsl/std/nn.dsl`).
    Std(Vec<Ident>),
    /// `import "layers.dsl"`: a file, relative to the importing file.
    File(String),
}

/// `import std.nn`, `import std.nn.{Linear, LSTMCell}`, `import "x.dsl"`, `import "x.dsl".{A}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub target: ImportTarget,
    /// `None` imports every item of the target.
    pub names: Option<Vec<Ident>>,
    pub span: Span,
}

/// A declared type of a function parameter or entry input.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    Int(Span),
    Float(Span),
    Bool(Span),
    /// `f32[B, T, d]`; `dims` is `None` for a bare dtype (`f32`: any shape).
    Tensor {
        dtype: Ident,
        dims: Option<Vec<Expr>>,
        span: Span,
    },
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Int(s) | TypeExpr::Float(s) | TypeExpr::Bool(s) => *s,
            TypeExpr::Tensor { span, .. } => *span,
        }
    }
}

/// A parameter of a `fn`/`entry`, or a hyperparameter of a block.
#[derive(Clone, Debug, PartialEq)]
pub struct FnParam {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub default: Option<Expr>,
}

/// `fn name(params) -> ret { body }`, `fn name(params) = expr`, or `entry name(...) { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    pub name: Ident,
    pub params: Vec<FnParam>,
    /// Declared result types (`-> f32[B, N]` or `-> (f32[B], i64[B])`).
    pub ret: Option<Vec<TypeExpr>>,
    pub body: Body,
    pub span: Span,
}

/// `block Name(hparams) { members }` or `model Name(hparams) { members }`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDef {
    /// `model` rather than `block`: its entries can be run.
    pub is_model: bool,
    pub name: Ident,
    pub hparams: Vec<FnParam>,
    pub members: Vec<Member>,
    pub span: Span,
}

/// One member of a block.
#[derive(Clone, Debug, PartialEq)]
pub enum Member {
    /// `param w: f32[out, inp] = normal(0.02) if cond`
    Param {
        name: Ident,
        dtype: Ident,
        dims: Vec<Expr>,
        init: Option<Expr>,
        cond: Option<Expr>,
        span: Span,
    },
    /// `name = Block(args)`, `name = repeat(n) Block(args)`, optionally `shares other.path`
    /// and `if cond`.
    Sub {
        name: Ident,
        repeat: Option<Expr>,
        block: Ident,
        args: Vec<Arg>,
        shares: Option<Expr>,
        cond: Option<Expr>,
        span: Span,
    },
    /// `let dh = d / heads`: a block-level constant computed from hyperparameters.
    Let { name: Ident, value: Expr, span: Span },
    /// A method; `forward` is the one a plain call `instance(x)` runs.
    Fn(FnDef),
    /// An entry point of a model.
    Entry(FnDef),
}

/// A call argument, positional or `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
}

/// A sequence of statements.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

/// A binding pattern: `x`, `_`, `(a, (b, _))`.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    Name(Ident),
    Wild(Span),
    Tuple(Vec<Pattern>, Span),
}

/// `loop i in 0..n max 64 carry (h = h0) until all(done) { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct LoopStmt {
    pub var: Ident,
    /// `in start..end`; absent for a loop bounded only by `max`.
    pub range: Option<(Expr, Expr)>,
    pub max: Option<Expr>,
    pub carry: Vec<(Ident, Expr)>,
    pub until: Option<Expr>,
    pub body: Body,
    pub span: Span,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Let {
        pat: Pattern,
        value: Expr,
        span: Span,
    },
    /// `for i in a..b { ... }`: unrolled at compile time; bindings made in the body stay visible.
    For {
        var: Ident,
        start: Expr,
        end: Expr,
        body: Body,
        span: Span,
    },
    Loop(LoopStmt),
    /// `if c { ... } else { ... }`: chosen at compile time (`c` must be static); bindings made in
    /// the chosen branch stay visible after it.
    If {
        cond: Expr,
        then: Body,
        otherwise: Option<Body>,
        span: Span,
    },
    /// `next h = e, c = e` inside a loop body.
    Next {
        values: Vec<(Ident, Expr)>,
        span: Span,
    },
    /// `emit name = e` inside a loop body: stacked along a new leading axis.
    Emit {
        name: Ident,
        value: Expr,
        span: Span,
    },
    /// `return a, b` or `return (x = a, y = b)`.
    Return {
        values: Vec<(Option<Ident>, Expr)>,
        span: Span,
    },
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

/// Binary operators, in the source's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    MatMul,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    /// The operator as written in the source (`+`, `@`, `<=`).
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Pow => "**",
            BinOp::MatMul => "@",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&",
            BinOp::Or => "|",
        }
    }
}

/// An item inside `x[...]`.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// `x[i]`: a static integer selects and drops the axis; a tensor index takes along it.
    Expr(Expr),
    /// `x[a:b:s]`, any part optional.
    Slice {
        start: Option<Expr>,
        end: Option<Expr>,
        step: Option<Expr>,
        span: Span,
    },
    /// `None`: insert an axis of size 1.
    NewAxis(Span),
    /// `...`: as many `:` as needed.
    Ellipsis(Span),
}

/// An expression with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    /// `None`
    NoneLit,
    Name(String),
    /// `[a, b, c]`: a list (shapes, axes, tensors to concatenate).
    List(Vec<Expr>),
    /// `(a, b)`
    Tuple(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    /// `a.b`
    Field(Box<Expr>, Ident),
    /// `x[items]`
    Index(Box<Expr>, Vec<IndexItem>),
    /// `if c { a } else { b }`: chosen at compile time; `c` must be static.
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
}
