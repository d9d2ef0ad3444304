//! Graph IR passes: small named rewrites with one signature, run in a fixed pipeline.
//!
//! A [`Pass`] rewrites one graph level; [`run_on_graph`] applies it to a graph and, first, to
//! every loop body inside it (innermost first), and [`run_on_module`] to every function. Each
//! pass keeps the graph verifying (types never change; values are only replaced by values of
//! the same type).

mod canonicalize;
mod const_fold;
mod cse;
mod dce;
mod matvec;

pub use canonicalize::Canonicalize;
pub use const_fold::ConstFold;
pub use cse::Cse;
pub use dce::Dce;
pub use matvec::MatVec;

use petgraph::Direction;
use petgraph::visit::EdgeRef;

use crate::graph::{Edge, Graph, Module, NodeId, Value};
use crate::op::{Literal, Op};

/// A rewrite of one graph level (loop bodies are reached through [`run_on_graph`]).
pub trait Pass {
    /// The name used on the command line (`--after cse`) and in dumps.
    fn name(&self) -> &'static str;
    /// Rewrites `g` in place; returns whether anything changed.
    fn run(&self, g: &mut Graph) -> bool;
}

/// The names of the standard pipeline's passes, in order.
pub const PASS_NAMES: [&str; 5] = ["matvec", "canonicalize", "const-fold", "cse", "dce"];

/// The standard pipeline: matvec, canonicalize, const-fold, cse, dce.
pub fn standard_pipeline() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(MatVec),
        Box::new(Canonicalize),
        Box::new(ConstFold),
        Box::new(Cse),
        Box::new(Dce),
    ]
}

/// `--after` named a pass that the pipeline does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pass `{0}` (the passes are matvec, canonicalize, const-fold, cse, dce)")]
pub struct UnknownPass(pub String);

/// Runs `pass` on the loop bodies inside `g` (recursively, innermost first), then on `g`.
pub fn run_on_graph(pass: &dyn Pass, g: &mut Graph) -> bool {
    let mut changed = false;
    let nodes: Vec<NodeId> = g.dag.node_indices().collect();
    for n in nodes {
        if let Op::Loop(l) = &mut g.dag[n].op {
            changed |= run_on_graph(pass, &mut l.body);
        }
    }
    pass.run(g) | changed
}

/// Runs `pass` on every function of the module.
pub fn run_on_module(pass: &dyn Pass, m: &mut Module) -> bool {
    let mut changed = false;
    for f in &mut m.functions {
        changed |= run_on_graph(pass, &mut f.graph);
    }
    changed
}

/// Runs the standard pipeline once over the module, calling `after_each(pass name, module)`
/// after each pass, and stopping after the pass named `upto` (if any).
pub fn run_pipeline(
    module: &mut Module,
    upto: Option<&str>,
    mut after_each: impl FnMut(&str, &Module),
) -> Result<(), UnknownPass> {
    if let Some(u) = upto
        && !PASS_NAMES.contains(&u)
    {
        return Err(UnknownPass(u.to_string()));
    }
    for pass in standard_pipeline() {
        run_on_module(pass.as_ref(), module);
        after_each(pass.name(), module);
        if upto == Some(pass.name()) {
            break;
        }
    }
    Ok(())
}

/// The literal of a value produced by a `const` node.
fn const_of(g: &Graph, v: Value) -> Option<&Literal> {
    match &g.dag.node_weight(v.node)?.op {
        Op::Const(lit) if v.index == 0 => Some(lit),
        _ => None,
    }
}

/// Makes operand `slot` of `n` read `v`.
fn set_operand(g: &mut Graph, n: NodeId, slot: u32, v: Value) {
    let old: Vec<_> = g
        .dag
        .edges_directed(n, Direction::Incoming)
        .filter(|e| e.weight().operand == slot)
        .map(|e| e.id())
        .collect();
    for e in old {
        g.dag.remove_edge(e);
    }
    g.dag.add_edge(
        v.node,
        n,
        Edge {
            result: v.index,
            operand: slot,
        },
    );
}

/// Removes `n` if nothing uses it and it is not an input or an output; returns whether it did.
fn remove_if_dead(g: &mut Graph, n: NodeId) -> bool {
    let dead = g.dag.node_weight(n).is_some_and(|w| !matches!(w.op, Op::Input { .. }))
        && g.dag.edges_directed(n, Direction::Outgoing).next().is_none()
        && !g.outputs.iter().any(|(_, v)| v.node == n);
    if dead {
        g.dag.remove_node(n);
    }
    dead
}

/// Replaces every use of `n`'s results by the same results of `by`, then removes `n`.
fn replace_node(g: &mut Graph, n: NodeId, by: &[Value]) {
    for (i, v) in by.iter().enumerate() {
        g.replace_uses(
            Value {
                node: n,
                index: i as u32,
            },
            *v,
        );
    }
    g.dag.remove_node(n);
}
