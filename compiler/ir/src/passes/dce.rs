//! `dce`: dead code elimination.

use std::collections::HashSet;

use petgraph::Direction;

use super::Pass;
use crate::graph::{Graph, NodeId};
use crate::op::Op;

/// Removes the nodes that no output depends on. Inputs always stay (they are the graph's
/// signature), so a loop body keeps its interface: only its dead inner nodes go.
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, g: &mut Graph) -> bool {
        let mut live: HashSet<NodeId> = HashSet::new();
        let mut stack: Vec<NodeId> = g
            .outputs
            .iter()
            .map(|(_, v)| v.node)
            .filter(|n| g.dag.contains_node(*n))
            .collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(g.dag.neighbors_directed(n, Direction::Incoming));
            }
        }
        let dead: Vec<NodeId> = g
            .dag
            .node_indices()
            .filter(|n| !live.contains(n) && !matches!(g.dag[*n].op, Op::Input { .. }))
            .collect();
        for &n in &dead {
            g.dag.remove_node(n);
        }
        !dead.is_empty()
    }
}
