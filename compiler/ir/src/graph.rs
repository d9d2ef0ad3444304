//! The Graph IR container: a `petgraph` stable graph of [`Node`]s whose edges carry values.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use petgraph::Direction;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;

use crate::dtype::DType;
use crate::infer::{InferError, infer};
use crate::op::Op;
use crate::shape::{Shape, shape_to_string};

/// A node's index in its graph.
pub type NodeId = NodeIndex<u32>;

/// The dtype and (symbolic) shape of a value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn new(dtype: DType, shape: Shape) -> TensorType {
        TensorType { dtype, shape }
    }
    /// A scalar (rank 0) of the given dtype.
    pub fn scalar(dtype: DType) -> TensorType {
        TensorType { dtype, shape: vec![] }
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for TensorType {
    /// `f32[B, T, 64]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, shape_to_string(&self.shape))
    }
}

impl fmt::Debug for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// One result of a node: output `index` of `node`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Value {
    pub node: NodeId,
    pub index: u32,
}

impl Value {
    /// The first (usually only) result of a node.
    pub fn of(node: NodeId) -> Value {
        Value { node, index: 0 }
    }
}

/// An edge from a producer to a consumer: which result feeds which operand slot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Edge {
    /// The result index of the source node.
    pub result: u32,
    /// The operand position in the target node.
    pub operand: u32,
}

/// Where a node came from in the user's program, for error messages and dumps.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Origin {
    /// The binding or parameter path (`h`, `layers.0.attn`), may be empty.
    pub name: String,
    /// `file:line:col`, may be empty.
    pub loc: String,
}

/// An operation with its result types.
#[derive(Clone, PartialEq, Debug)]
pub struct Node {
    pub op: Op,
    pub outputs: Vec<TensorType>,
    pub origin: Origin,
}

/// A dataflow graph: a function body, or a loop body.
#[derive(Clone, Default)]
pub struct Graph {
    pub dag: StableDiGraph<Node, Edge, u32>,
    /// The input nodes (`Op::Input`), in parameter order.
    pub inputs: Vec<NodeId>,
    /// The named results, in order.
    pub outputs: Vec<(String, Value)>,
}

/// A malformed graph operation (wrong operand count, type error), with the op and the types.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct GraphError(pub String);

impl From<InferError> for GraphError {
    fn from(e: InferError) -> GraphError {
        GraphError(e.to_string())
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Adds an input node of the given type.
    pub fn add_input(&mut self, name: &str, ty: TensorType) -> NodeId {
        let id = self.dag.add_node(Node {
            op: Op::Input { name: name.to_string() },
            outputs: vec![ty],
            origin: Origin {
                name: name.to_string(),
                loc: String::new(),
            },
        });
        self.inputs.push(id);
        id
    }

    /// Adds an op, inferring its result types from the operands. Fails with a type error that
    /// names the op and the operand types.
    pub fn add(&mut self, op: Op, operands: &[Value], origin: Origin) -> Result<NodeId, InferError> {
        let types: Vec<&TensorType> = operands.iter().map(|v| self.ty(*v)).collect();
        let outputs = infer(&op, &types)?;
        Ok(self.add_typed(op, operands, outputs, origin))
    }

    /// Adds an op with given result types, without inference (for parsers and passes that
    /// already know the types; run the verifier afterwards).
    pub fn add_typed(&mut self, op: Op, operands: &[Value], outputs: Vec<TensorType>, origin: Origin) -> NodeId {
        let id = self.dag.add_node(Node { op, outputs, origin });
        for (i, v) in operands.iter().enumerate() {
            self.dag.add_edge(
                v.node,
                id,
                Edge {
                    result: v.index,
                    operand: i as u32,
                },
            );
        }
        id
    }

    /// The type of a value. Panics if the value does not exist (an internal invariant).
    pub fn ty(&self, v: Value) -> &TensorType {
        &self.dag[v.node].outputs[v.index as usize]
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.dag[id]
    }

    /// The operands of a node, in order.
    pub fn operands(&self, id: NodeId) -> Vec<Value> {
        let mut edges: Vec<(u32, Value)> = self
            .dag
            .edges_directed(id, Direction::Incoming)
            .map(|e| {
                (
                    e.weight().operand,
                    Value {
                        node: e.source(),
                        index: e.weight().result,
                    },
                )
            })
            .collect();
        edges.sort_by_key(|(slot, _)| *slot);
        edges.into_iter().map(|(_, v)| v).collect()
    }

    /// The consumers of a node: (consumer, operand slot, result index), sorted.
    pub fn users(&self, id: NodeId) -> Vec<(NodeId, u32, u32)> {
        let mut out: Vec<(NodeId, u32, u32)> = self
            .dag
            .edges_directed(id, Direction::Outgoing)
            .map(|e| (e.target(), e.weight().operand, e.weight().result))
            .collect();
        out.sort();
        out
    }

    /// Redirects every use of `old` (operand edges and graph outputs) to `new`.
    pub fn replace_uses(&mut self, old: Value, new: Value) {
        let edges: Vec<(EdgeIndex<u32>, NodeId, Edge)> = self
            .dag
            .edges_directed(old.node, Direction::Outgoing)
            .filter(|e| e.weight().result == old.index)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (eid, target, w) in edges {
            self.dag.remove_edge(eid);
            self.dag.add_edge(
                new.node,
                target,
                Edge {
                    result: new.index,
                    operand: w.operand,
                },
            );
        }
        for (_, v) in self.outputs.iter_mut() {
            if *v == old {
                *v = new;
            }
        }
    }

    /// Nodes in a deterministic topological order: Kahn's algorithm, always taking the ready
    /// node with the smallest index. Returns `Err(node)` on a cycle.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, NodeId> {
        let mut indeg: HashMap<NodeId, usize> = HashMap::new();
        let mut ready = BTreeSet::new();
        for n in self.dag.node_indices() {
            let d = self.operands(n).len();
            indeg.insert(n, d);
            if d == 0 {
                ready.insert(n);
            }
        }
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(&n) = ready.iter().next() {
            ready.remove(&n);
            order.push(n);
            for e in self.dag.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("edge target is a node");
                *d -= 1;
                if *d == 0 {
                    ready.insert(e.target());
                }
            }
        }
        if order.len() != indeg.len() {
            let stuck = indeg.iter().filter(|(_, d)| **d > 0).map(|(n, _)| *n).min();
            return Err(stuck.expect("a cycle leaves a node with operands"));
        }
        Ok(order)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.dag.node_count()
    }

    /// True for a graph with no nodes.
    pub fn is_empty(&self) -> bool {
        self.dag.node_count() == 0
    }

    /// Rebuilds the graph with nodes renumbered densely in topological order, so that printing,
    /// comparing and snapshotting are independent of the history of edits.
    pub fn compacted(&self) -> Graph {
        let order = self.topo_order().unwrap_or_else(|_| self.dag.node_indices().collect());
        let mut map = HashMap::new();
        let mut out = Graph::new();
        for n in order {
            let node = self.dag[n].clone();
            let ops: Vec<Value> = self
                .operands(n)
                .into_iter()
                .map(|v| Value {
                    node: map[&v.node],
                    index: v.index,
                })
                .collect();
            let id = out.add_typed(node.op, &ops, node.outputs, node.origin);
            map.insert(n, id);
        }
        out.inputs = self.inputs.iter().map(|n| map[n]).collect();
        out.outputs = self
            .outputs
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    Value {
                        node: map[&v.node],
                        index: v.index,
                    },
                )
            })
            .collect();
        out
    }

    /// The output types, in order.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.outputs.iter().map(|(_, v)| self.ty(*v).clone()).collect()
    }

    /// The input types, in order.
    pub fn input_types(&self) -> Vec<TensorType> {
        self.inputs.iter().map(|n| self.dag[*n].outputs[0].clone()).collect()
    }
}

impl PartialEq for Graph {
    /// Structural equality after compaction: same ops, types, edges, inputs and outputs.
    fn eq(&self, other: &Graph) -> bool {
        let (a, b) = (self.compacted(), other.compacted());
        if a.len() != b.len() || a.inputs != b.inputs || a.outputs != b.outputs {
            return false;
        }
        a.dag.node_indices().zip(b.dag.node_indices()).all(|(x, y)| {
            let (nx, ny) = (&a.dag[x], &b.dag[y]);
            nx.op == ny.op && nx.outputs == ny.outputs && a.operands(x) == b.operands(y)
        })
    }
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Graph({} nodes, {} inputs, {} outputs)",
            self.len(),
            self.inputs.len(),
            self.outputs.len()
        )
    }
}

/// How `mlc init-weights` fills a parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// Normal with mean 0 and this standard deviation.
    Normal(f64),
    /// Uniform in `[-bound, bound]`.
    Uniform(f64),
    /// Every element equal to this value (`zeros`, `ones`).
    Fill(f64),
}

/// A weight tensor of a module.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// Full dotted name, the key in the safetensors file.
    pub name: String,
    pub dtype: DType,
    /// Static shape (parameters never have symbolic dims).
    pub shape: Vec<u64>,
    pub init: Init,
}

/// A named entry point.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub graph: Graph,
}

/// A compiled model: its weights and entry points.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Module {
    pub name: String,
    /// Sorted by name.
    pub params: Vec<ParamDecl>,
    pub functions: Vec<Function>,
}

impl Module {
    /// The entry point called `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.params.iter().find(|p| p.name == name)
    }
}
