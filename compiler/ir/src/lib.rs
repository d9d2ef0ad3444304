//! The mlc Graph IR.
//!
//! A [`Module`] holds the weights ([`ParamDecl`]) and entry points ([`Function`]) of a model.
//! Each function is a [`Graph`]: a `petgraph` stable graph of [`Node`]s, each an [`Op`] with its
//! result types. Shapes are symbolic ([`Dim`]). [`infer`] defines every op's typing rule.

pub mod dtype;
pub mod graph;
pub mod infer;
pub mod op;
pub mod shape;

pub use dtype::DType;
pub use graph::{Edge, Function, Graph, GraphError, Init, Module, Node, NodeId, Origin, ParamDecl, TensorType, Value};
pub use infer::{InferError, broadcast_shapes, infer};
pub use op::{ArgOp, BinaryOp, Literal, LiteralData, LoopOp, Op, ReduceOp, UnaryOp};
pub use shape::{Bindings, Dim, Shape, numel, shape_to_string};
