//! `cse`: common subexpression elimination within one graph level.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::{Pass, replace_node};
use crate::graph::{Graph, NodeId, Value};
use crate::op::Op;
use crate::text::{body_key, op_head};

/// Merges nodes with the same op, attributes, operands and result types into the first of them
/// (in topological order, keeping its origin). Every op is pure (RNG is counter-based), so
/// `rng_uniform`, `param` and `loop` nodes merge too; `input` nodes never do. Loop bodies are
/// separate scopes: nothing merges across a body boundary. Attributes compare by their exact
/// text form, so `0.0` and `-0.0` constants stay apart.
pub struct Cse;

impl Pass for Cse {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&self, g: &mut Graph) -> bool {
        let Ok(order) = g.topo_order() else { return false };
        // Nodes by a cheap hash of what they are (op name, operands, result types); the full
        // key (attributes and loop bodies in text form) is built only for nodes whose hash
        // another node shares, since building it costs more than the rest of the pass.
        let mut by_hash: HashMap<u64, Vec<NodeId>> = HashMap::new();
        let mut keys: HashMap<NodeId, String> = HashMap::new();
        let mut changed = false;
        for n in order {
            let node = &g.dag[n];
            if matches!(node.op, Op::Input { .. }) {
                continue;
            }
            let mut h = DefaultHasher::new();
            (node.op.mnemonic(), g.operands(n), &node.outputs).hash(&mut h);
            let same_hash = by_hash.entry(h.finish()).or_default();
            let mut first = None;
            for &m in same_hash.iter() {
                for k in [m, n] {
                    keys.entry(k).or_insert_with(|| full_key(g, k));
                }
                if keys[&m] == keys[&n] {
                    first = Some(m);
                    break;
                }
            }
            match first {
                Some(first) => {
                    let by: Vec<Value> = (0..node.outputs.len() as u32)
                        .map(|index| Value { node: first, index })
                        .collect();
                    replace_node(g, n, &by);
                    changed = true;
                }
                None => same_hash.push(n),
            }
        }
        changed
    }
}

/// Everything that makes node `n` what it is, in text form.
fn full_key(g: &Graph, n: NodeId) -> String {
    let node = &g.dag[n];
    let mut key = format!("{}|{:?}|{:?}", op_head(&node.op), g.operands(n), node.outputs);
    if let Op::Loop(l) = &node.op {
        key.push_str(&body_key(&l.body));
    }
    key
}
