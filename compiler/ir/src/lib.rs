//! The mlc Graph IR.
//!
//! A [`Module`] holds the weights ([`ParamDecl`]) and entry points ([`Function`]) of a model.
//! Each function is a [`Graph`]: a `petgraph` stable graph of [`Node`]s, each an [`Op`] with its
//! result types. Shapes are symbolic ([`Dim`]). [`infer`](fn@infer) defines every op's typing
//! rule, [`verify`] checks a module's invariants, [`text`] prints and parses the IR text form,
//! [`dot`] exports Graphviz, and [`passes`] holds the graph rewrites.

pub mod dot;
pub mod dtype;
pub mod graph;
pub mod infer;
pub mod kernel;
pub mod op;
pub mod passes;
pub mod plan;
pub mod shape;
pub mod text;
pub mod verify;

pub use dot::{graph_to_dot, to_dot};
pub use dtype::DType;
pub use graph::{Edge, Function, Graph, GraphError, Init, Module, Node, NodeId, Origin, ParamDecl, TensorType, Value};
pub use infer::{InferError, broadcast_shapes, infer};
pub use kernel::{
    Access, CodeKey, IExpr, KBuf, KStmt, KernelFn, RowLayerNorm, RowSoftmax, Scalar, VExpr, print_kernel,
    row_layer_norm, row_softmax,
};
pub use op::{ArgOp, BinaryOp, Literal, LiteralData, LoopOp, Op, ReduceOp, UnaryOp};
pub use passes::{Pass, UnknownPass, run_pipeline, standard_pipeline};
pub use plan::{Activation, BufId, BufKind, FunctionPlan, MatMulEpilogue, ModulePlan, PlanBuf, Step, print_plan};
pub use shape::{Bindings, Dim, Shape, numel, shape_to_string};
pub use text::{ParseError, parse_module, print_graph, print_module};
pub use verify::{VerifyError, verify_graph, verify_module};
