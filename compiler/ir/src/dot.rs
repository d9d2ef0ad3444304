//! Graphviz export of a function: one node per op, labelled like the text form; loop bodies as
//! clusters. The output is deterministic (nodes in the text form's numbering).

use std::fmt::Write;

use crate::graph::{Graph, Module};
use crate::op::Op;
use crate::text::{Numbering, op_head};

/// Longest op label before it is cut with `...` (long literals and shapes).
const MAX_HEAD: usize = 60;

/// The DOT text of the function called `function`, or `None` if the module has none.
pub fn to_dot(m: &Module, function: &str) -> Option<String> {
    m.function(function).map(|f| graph_to_dot(&f.graph, &f.name))
}

/// The DOT text of one graph, titled `name`.
pub fn graph_to_dot(g: &Graph, name: &str) -> String {
    let mut out = format!("digraph \"{}\" {{\n", escape(name));
    out.push_str("  compound=true;\n");
    out.push_str("  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
    write_graph(&mut out, g, "n", "return", 1);
    out.push_str("}\n");
    out
}

/// Escapes a label for a double-quoted DOT string.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn head(op: &Op) -> String {
    let h = op_head(op);
    if h.chars().count() <= MAX_HEAD {
        return h;
    }
    let mut cut: String = h.chars().take(MAX_HEAD - 3).collect();
    cut.push_str("...");
    cut
}

fn write_graph(out: &mut String, g: &Graph, prefix: &str, end: &str, depth: usize) {
    let pad = "  ".repeat(depth);
    let num = Numbering::of(g);
    let id = |n| format!("{prefix}{}", num.number[&n]);
    for &n in &num.order {
        let node = &g.dag[n];
        let k = num.number[&n];
        let types: Vec<String> = node.outputs.iter().map(|t| t.to_string()).collect();
        let label = format!("%{k} = {}\n{}", head(&node.op), types.join(", "));
        let shape = match node.op {
            Op::Input { .. } => ", shape=ellipse",
            Op::Param { .. } => ", shape=note",
            Op::Const(_) => ", shape=box, style=rounded",
            Op::Loop(_) => ", shape=box3d",
            _ => "",
        };
        let _ = writeln!(out, "{pad}{} [label=\"{}\"{shape}];", id(n), escape(&label));
        if let Op::Loop(l) = &node.op {
            let inner = format!("{prefix}{k}_");
            let _ = writeln!(out, "{pad}subgraph cluster_{inner} {{");
            let _ = writeln!(out, "{pad}  label=\"loop %{k} body\";");
            let _ = writeln!(out, "{pad}  style=dashed;");
            write_graph(out, &l.body, &inner, "yield", depth + 1);
            let _ = writeln!(out, "{pad}}}");
            if !l.body.is_empty() {
                // The body's node numbered 0 (its first in topological order).
                let first = format!("{inner}0");
                let _ = writeln!(
                    out,
                    "{pad}{} -> {first} [style=dashed, arrowhead=none, lhead=cluster_{inner}];",
                    id(n)
                );
            }
        }
    }
    for &n in &num.order {
        let operands = g.operands(n);
        for (slot, v) in operands.iter().enumerate() {
            let label = match (operands.len() > 1, v.index) {
                (true, 0) => format!("{slot}"),
                (true, i) => format!("{slot} (#{i})"),
                (false, 0) => String::new(),
                (false, i) => format!("#{i}"),
            };
            let attrs = if label.is_empty() {
                String::new()
            } else {
                format!(" [label=\"{label}\"]")
            };
            let _ = writeln!(out, "{pad}{} -> {}{attrs};", id(v.node), id(n));
        }
    }
    for (i, (name, v)) in g.outputs.iter().enumerate() {
        let Some(&k) = num.number.get(&v.node) else { continue };
        let label = format!("{end} {name}");
        let _ = writeln!(
            out,
            "{pad}{prefix}out{i} [label=\"{}\", shape=plaintext];",
            escape(&label)
        );
        let tail = if v.index > 0 {
            format!(" [label=\"#{}\"]", v.index)
        } else {
            String::new()
        };
        let _ = writeln!(out, "{pad}{prefix}{k} -> {prefix}out{i}{tail};");
    }
}
