//! The verifier: structural and typing invariants of a module, checked after lowering, after
//! parsing, and after every pass.
//!
//! Nodes are named as in the text form (`%12 = matmul`, numbered in topological order), so an
//! error can be matched against a dump.

use std::collections::{HashMap, HashSet};
use std::fmt;

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use crate::dtype::DType;
use crate::graph::{Graph, Module, NodeId, Origin, ParamDecl, TensorType};
use crate::infer::infer;
use crate::op::{LiteralData, Op};
use crate::shape::Dim;
use crate::text::{Numbering, op_head};

/// One broken invariant, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// The graph: `func greedy`, or `func greedy, loop %7` for a loop body.
    pub location: String,
    /// The node, as in the text form (`%12 = matmul`), when the error concerns one.
    pub node: Option<String>,
    /// The node's origin in the source (may be empty).
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for VerifyError {
    /// `func f: %12 = matmul (h @ model.dsl:3:5): declares f32[B, 4] but ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if let Some(n) = &self.node {
            write!(f, "{n}")?;
            match (self.origin.name.is_empty(), self.origin.loc.is_empty()) {
                (true, true) => {}
                (false, true) => write!(f, " ({})", self.origin.name)?,
                (true, false) => write!(f, " (at {})", self.origin.loc)?,
                (false, false) => write!(f, " ({} @ {})", self.origin.name, self.origin.loc)?,
            }
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for VerifyError {}

/// Verifies every function of a module (and the uniqueness of param and function names).
pub fn verify_module(m: &Module) -> Result<(), Vec<VerifyError>> {
    let mut errors = Vec::new();
    let mut module_error = |message: String| {
        errors.push(VerifyError {
            location: format!("module {}", m.name),
            node: None,
            origin: Origin::default(),
            message,
        })
    };
    let mut seen = HashSet::new();
    for p in &m.params {
        if !seen.insert(p.name.as_str()) {
            module_error(format!("param `{}` is declared twice", p.name));
        }
    }
    let mut seen = HashSet::new();
    for f in &m.functions {
        if !seen.insert(f.name.as_str()) {
            module_error(format!("function `{}` is defined twice", f.name));
        }
    }
    for f in &m.functions {
        check_graph(&f.graph, &m.params, &format!("func {}", f.name), &mut errors);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Verifies one graph (and its loop bodies); `params` are the declarations its `param` nodes
/// must match.
pub fn verify_graph(g: &Graph, params: &[ParamDecl]) -> Result<(), Vec<VerifyError>> {
    let mut errors = Vec::new();
    check_graph(g, params, "graph", &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn types_str(ts: &[TensorType]) -> String {
    let parts: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
    format!("({})", parts.join(", "))
}

fn check_graph(g: &Graph, params: &[ParamDecl], location: &str, errors: &mut Vec<VerifyError>) {
    let num = Numbering::of(g);
    let cycle = g.topo_order().err();
    let name = |n: NodeId| match num.number.get(&n) {
        Some(k) => format!("%{k} = {}", g.dag[n].op.mnemonic()),
        None => format!("node {}", n.index()),
    };
    let mut err = |n: Option<NodeId>, message: String| {
        errors.push(VerifyError {
            location: location.to_string(),
            node: n.map(name),
            origin: n.map(|n| g.dag[n].origin.clone()).unwrap_or_default(),
            message,
        })
    };
    if let Some(n) = cycle {
        err(Some(n), "the graph has a cycle through this node".to_string());
    }

    // Edges and operand slots.
    let mut operands_ok = HashSet::new();
    for &n in &num.order {
        let mut slots = Vec::new();
        for e in g.dag.edges_directed(n, Direction::Incoming) {
            let (src, w) = (e.source(), e.weight());
            let n_out = g.dag[src].outputs.len();
            if w.result as usize >= n_out {
                err(
                    Some(n),
                    format!(
                        "operand {} uses result {} of {}, which has {n_out} result(s)",
                        w.operand,
                        w.result,
                        name(src)
                    ),
                );
            }
            slots.push(w.operand);
        }
        slots.sort();
        if slots.iter().enumerate().all(|(i, s)| *s as usize == i) {
            operands_ok.insert(n);
        } else {
            err(Some(n), format!("operand slots {slots:?} are not 0..{}", slots.len()));
        }
    }

    // Inputs and outputs.
    let mut listed = HashSet::new();
    for (i, &n) in g.inputs.iter().enumerate() {
        match g.dag.node_weight(n).map(|w| &w.op) {
            None => err(None, format!("input {i} is a node that does not exist")),
            Some(Op::Input { .. }) => {
                if !listed.insert(n) {
                    err(Some(n), format!("input {i} lists this node a second time"));
                }
            }
            Some(_) => err(Some(n), format!("input {i} is not an `input` node")),
        }
    }
    for &n in &num.order {
        if matches!(g.dag[n].op, Op::Input { .. }) && !listed.contains(&n) {
            err(
                Some(n),
                "this input node is missing from the graph's inputs".to_string(),
            );
        }
    }
    for (o, v) in &g.outputs {
        match g.dag.node_weight(v.node) {
            None => err(None, format!("output `{o}` is a node that does not exist")),
            Some(w) if v.index as usize >= w.outputs.len() => err(
                Some(v.node),
                format!("output `{o}` is result {} of a node with {}", v.index, w.outputs.len()),
            ),
            Some(_) => {}
        }
    }

    // Types.
    let decls: HashMap<&str, &ParamDecl> = params.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut bodies = Vec::new();
    for &n in &num.order {
        let node = &g.dag[n];
        let operands = g.operands(n);
        let ok = cycle.is_none()
            && operands_ok.contains(&n)
            && operands
                .iter()
                .all(|v| (v.index as usize) < g.dag[v.node].outputs.len());
        if !ok {
            continue;
        }
        let types: Vec<&TensorType> = operands.iter().map(|v| g.ty(*v)).collect();
        match &node.op {
            Op::Input { .. } => {
                if !operands.is_empty() || node.outputs.len() != 1 {
                    err(Some(n), "an input has no operands and one result".to_string());
                }
            }
            Op::Param { name: p } => match decls.get(p.as_str()) {
                None => err(Some(n), format!("param `{p}` is not declared in the module")),
                Some(d) => {
                    let ty = TensorType::new(d.dtype, d.shape.iter().map(|&s| Dim::c(s as i64)).collect());
                    if !operands.is_empty() || node.outputs != [ty.clone()] {
                        err(
                            Some(n),
                            format!(
                                "param `{p}` is declared {ty} but the node has {} operand(s) and type {}",
                                operands.len(),
                                types_str(&node.outputs)
                            ),
                        );
                    }
                }
            },
            op => match infer(op, &types) {
                Err(e) => err(Some(n), format!("type error: {e}")),
                Ok(t) if t != node.outputs => err(
                    Some(n),
                    format!(
                        "declares {} but `{}` of {} gives {}",
                        types_str(&node.outputs),
                        op_head(op),
                        types_str(&types.into_iter().cloned().collect::<Vec<_>>()),
                        types_str(&t)
                    ),
                ),
                Ok(_) => {}
            },
        }
        if let Op::Const(lit) = &node.op
            && let Some(m) = literal_problem(lit.dtype, &lit.data)
        {
            err(Some(n), m);
        }
        if let Op::Loop(l) = &node.op {
            bodies.push((num.number[&n], &l.body));
        }
    }
    for (k, body) in bodies {
        check_graph(body, params, &format!("{location}, loop %{k}"), errors);
    }
}

/// A literal whose elements do not fit its dtype (the kind of data, or values that are not
/// exactly representable).
fn literal_problem(dtype: DType, data: &LiteralData) -> Option<String> {
    match data {
        LiteralData::Float(v) if dtype.is_float() => {
            let inexact = v
                .iter()
                .find(|x| dtype == DType::F32 && !x.is_nan() && (**x as f32) as f64 != **x);
            inexact.map(|x| format!("literal value {x:?} is not exactly representable in f32"))
        }
        LiteralData::Int(v) if dtype.is_int() => {
            let out = v.iter().find(|x| dtype == DType::I32 && i32::try_from(**x).is_err());
            out.map(|x| format!("literal value {x} does not fit in i32"))
        }
        LiteralData::Bool(_) if dtype == DType::Bool => None,
        _ => Some(format!("literal data does not match its dtype {dtype}")),
    }
}
