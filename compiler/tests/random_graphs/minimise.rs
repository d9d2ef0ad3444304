//! Shrinking a failing module: greedily drop outputs, replace values by one of their
//! same-typed operands (or another same-typed value, or a fresh input), remove what became
//! dead, and keep each edit that still fails.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mlc_ir::{DType, Graph, Literal, LiteralData, Module, NodeId, Op, Origin, Value};

/// What replaces a value.
#[derive(Clone, Debug)]
enum New {
    Value(Value),
    /// A fresh input of the same type (at the top level only).
    Input,
    /// A constant of zeros (static shapes only).
    Zeros,
}

/// One edit of a module.
#[derive(Clone, Debug)]
enum Edit {
    DropOutput(usize),
    DropInput(usize),
    /// Removes one unused node of the graph at `path` (when dead code matters).
    RemoveNode {
        path: Vec<NodeId>,
        node: NodeId,
    },
    /// In the graph at `path` (loop nodes from the function down to a body), replace every use
    /// of `old` by `new`.
    Replace {
        path: Vec<NodeId>,
        old: Value,
        new: New,
    },
}

fn graph_at<'a>(m: &'a Module, path: &[NodeId]) -> Option<&'a Graph> {
    let mut g = &m.functions.first()?.graph;
    for &n in path {
        match &g.dag.node_weight(n)?.op {
            Op::Loop(l) => g = &l.body,
            _ => return None,
        }
    }
    Some(g)
}

fn graph_at_mut<'a>(m: &'a mut Module, path: &[NodeId]) -> Option<&'a mut Graph> {
    let mut g = &mut m.functions.first_mut()?.graph;
    for &n in path {
        match &mut g.dag.node_weight_mut(n)?.op {
            Op::Loop(l) => g = &mut l.body,
            _ => return None,
        }
    }
    Some(g)
}

/// Nodes that (transitively) use `n`, with `n`.
fn descendants(g: &Graph, n: NodeId) -> HashSet<NodeId> {
    let mut seen = HashSet::from([n]);
    let mut stack = vec![n];
    while let Some(x) = stack.pop() {
        for (u, _, _) in g.users(x) {
            if seen.insert(u) {
                stack.push(u);
            }
        }
    }
    seen
}

fn is_used(g: &Graph, v: Value) -> bool {
    g.users(v.node).iter().any(|&(_, _, r)| r == v.index) || g.outputs.iter().any(|(_, o)| *o == v)
}

/// Candidate edits of the graph at `path`, and of the loop bodies inside it.
fn edits_of(m: &Module, path: &[NodeId], keep_dead: bool, out: &mut Vec<Edit>) {
    let Some(g) = graph_at(m, path) else { return };
    let Ok(order) = g.topo_order() else { return };
    let top = path.is_empty();
    if keep_dead {
        for &n in order.iter().rev() {
            let unused = g.users(n).is_empty() && !g.outputs.iter().any(|(_, v)| v.node == n);
            if unused && !matches!(g.node(n).op, Op::Input { .. }) {
                out.push(Edit::RemoveNode {
                    path: path.to_vec(),
                    node: n,
                });
            }
        }
    }
    let mut bodies = Vec::new();
    for &n in order.iter().rev() {
        let node = g.node(n);
        if matches!(node.op, Op::Input { .. }) {
            continue;
        }
        if matches!(node.op, Op::Loop(_)) {
            bodies.push(n);
        }
        let below = descendants(g, n);
        for r in 0..node.outputs.len() {
            let old = Value {
                node: n,
                index: r as u32,
            };
            if !is_used(g, old) {
                continue;
            }
            let ty = &node.outputs[r];
            let mut news: Vec<Value> = Vec::new();
            for v in g.operands(n) {
                if g.ty(v) == ty && !news.contains(&v) {
                    news.push(v);
                }
            }
            for &i in &g.inputs {
                let v = Value::of(i);
                if g.ty(v) == ty && !news.contains(&v) {
                    news.push(v);
                }
            }
            // A few other same-typed values that do not depend on this one.
            let mut others = 0;
            for &o in order.iter().rev() {
                if others >= 2 || below.contains(&o) {
                    continue;
                }
                for (k, t) in g.node(o).outputs.iter().enumerate() {
                    let v = Value {
                        node: o,
                        index: k as u32,
                    };
                    if t == ty && !news.contains(&v) && others < 2 {
                        news.push(v);
                        others += 1;
                    }
                }
            }
            let mut news: Vec<New> = news.into_iter().map(New::Value).collect();
            let small_static = ty
                .shape
                .iter()
                .map(|d| d.as_const())
                .try_fold(1i64, |a, d| d.map(|d| a * d));
            if small_static.is_some_and(|n| n <= 64) && !matches!(node.op, Op::Const(_)) {
                news.push(New::Zeros);
            }
            if top {
                news.push(New::Input);
            }
            for new in news {
                out.push(Edit::Replace {
                    path: path.to_vec(),
                    old,
                    new,
                });
            }
        }
    }
    for n in bodies {
        let mut p = path.to_vec();
        p.push(n);
        edits_of(m, &p, keep_dead, out);
    }
}

fn all_edits(m: &Module, keep_dead: bool) -> Vec<Edit> {
    let mut out = Vec::new();
    let Some(f) = m.functions.first() else { return out };
    let g = &f.graph;
    if g.outputs.len() > 1 {
        out.extend((0..g.outputs.len()).map(Edit::DropOutput));
    }
    edits_of(m, &[], keep_dead, &mut out);
    for (k, &n) in g.inputs.iter().enumerate() {
        if g.users(n).is_empty() && !g.outputs.iter().any(|(_, v)| v.node == n) {
            out.push(Edit::DropInput(k));
        }
    }
    out
}

/// Removes nodes no output depends on (inputs stay), in every graph level.
fn dce(g: &mut Graph) {
    let mut live: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs.iter().map(|(_, v)| v.node).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.operands(n).into_iter().map(|v| v.node));
        }
    }
    let dead: Vec<NodeId> = g
        .dag
        .node_indices()
        .filter(|n| !live.contains(n) && !matches!(g.dag[*n].op, Op::Input { .. }))
        .collect();
    for n in dead {
        g.dag.remove_node(n);
    }
    let loops: Vec<NodeId> = g
        .dag
        .node_indices()
        .filter(|n| matches!(g.dag[*n].op, Op::Loop(_)))
        .collect();
    for n in loops {
        if let Op::Loop(l) = &mut g.dag[n].op {
            dce(&mut l.body);
        }
    }
}

fn used_params(g: &Graph, out: &mut HashSet<String>) {
    for n in g.dag.node_indices() {
        match &g.dag[n].op {
            Op::Param { name } => {
                out.insert(name.clone());
            }
            Op::Loop(l) => used_params(&l.body, out),
            _ => {}
        }
    }
}

fn fresh_name(g: &Graph) -> String {
    let names: HashSet<String> = g
        .inputs
        .iter()
        .filter_map(|&n| match &g.dag[n].op {
            Op::Input { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    (0..)
        .map(|k| format!("m{k}"))
        .find(|n| !names.contains(n))
        .expect("a free name")
}

/// Applies an edit, then removes dead code (unless `keep_dead`: then only the node an edit
/// replaced goes) and unused parameters, and verifies.
fn apply(m: &Module, e: &Edit, keep_dead: bool) -> Option<Module> {
    let mut m = m.clone();
    match e {
        Edit::DropOutput(k) => {
            m.functions.first_mut()?.graph.outputs.remove(*k);
        }
        Edit::DropInput(k) => {
            let g = &mut m.functions.first_mut()?.graph;
            let n = g.inputs.remove(*k);
            g.dag.remove_node(n);
        }
        Edit::Replace { path, old, new } => {
            let g = graph_at_mut(&mut m, path)?;
            let ty = g.ty(*old).clone();
            let new = match new {
                New::Value(v) => *v,
                New::Input => {
                    let name = fresh_name(g);
                    Value::of(g.add_input(&name, ty))
                }
                New::Zeros => {
                    let shape: Vec<u64> = ty.shape.iter().map(|d| d.as_const().unwrap_or(0) as u64).collect();
                    let n: u64 = shape.iter().product();
                    let data = match ty.dtype {
                        DType::Bool => LiteralData::Bool(vec![false; n as usize]),
                        d if d.is_int() => LiteralData::Int(vec![0; n as usize]),
                        _ => LiteralData::Float(vec![0.0; n as usize]),
                    };
                    let lit = Literal {
                        dtype: ty.dtype,
                        shape,
                        data,
                    };
                    Value::of(g.add_typed(Op::Const(lit), &[], vec![ty], Origin::default()))
                }
            };
            g.replace_uses(*old, new);
            if g.users(old.node).is_empty() && !g.outputs.iter().any(|(_, v)| v.node == old.node) {
                g.dag.remove_node(old.node);
            }
        }
        Edit::RemoveNode { path, node } => {
            graph_at_mut(&mut m, path)?.dag.remove_node(*node);
        }
    }
    let f = m.functions.first_mut()?;
    if !keep_dead {
        dce(&mut f.graph);
    }
    let mut used = HashSet::new();
    used_params(&f.graph, &mut used);
    m.params.retain(|p| used.contains(&p.name));
    mlc_ir::verify_module(&m).ok()?;
    Some(m)
}

/// The cost the minimiser lowers: ops count twice, leaves (inputs, params, constants) once.
fn cost(g: &Graph) -> usize {
    g.dag
        .node_indices()
        .map(|n| match &g.dag[n].op {
            Op::Loop(l) => 2 + cost(&l.body),
            op if op.is_leaf() => 1,
            _ => 2,
        })
        .sum()
}

/// The number of nodes, loop bodies included.
pub fn size(g: &Graph) -> usize {
    g.dag
        .node_indices()
        .map(|n| match &g.dag[n].op {
            Op::Loop(l) => 1 + size(&l.body),
            _ => 1,
        })
        .sum()
}

/// Shrinks `m` while `fails` holds, within `budget` calls of `fails` and `time`. Returns the
/// smallest failing module found and the number of calls made.
pub fn minimise(m: &Module, fails: &mut dyn FnMut(&Module) -> bool, budget: usize, time: Duration) -> (Module, usize) {
    let start = Instant::now();
    let mut best = m.clone();
    let mut calls = 0;
    // A failure in dead code (a backend that runs nodes no output needs) must keep it.
    let mut without_dead = m.clone();
    dce(&mut without_dead.functions[0].graph);
    let keep_dead = size(&without_dead.functions[0].graph) < size(&m.functions[0].graph) && {
        calls += 1;
        !fails(&without_dead)
    };
    'outer: loop {
        for e in all_edits(&best, keep_dead) {
            if calls >= budget || start.elapsed() > time {
                break 'outer;
            }
            let Some(cand) = apply(&best, &e, keep_dead) else {
                continue;
            };
            let smaller = cost(&cand.functions[0].graph) < cost(&best.functions[0].graph)
                || cand.functions[0].graph.outputs.len() < best.functions[0].graph.outputs.len()
                || cand.functions[0].graph.inputs.len() < best.functions[0].graph.inputs.len();
            // A fresh input replacing a lone leaf is not progress.
            if !smaller {
                continue;
            }
            calls += 1;
            if fails(&cand) {
                best = cand;
                continue 'outer;
            }
        }
        break;
    }
    (best, calls)
}
