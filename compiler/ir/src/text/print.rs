//! The printer of the text form.

use std::collections::HashMap;
use std::fmt::Write;

use super::{f32_element, float, name, quote};
use crate::graph::{Graph, Init, Module, NodeId, Origin, ParamDecl, TensorType, Value};
use crate::op::{Literal, LiteralData, Op};
use crate::shape::shape_to_string;

/// Column at which origin comments start (lines that are longer get two spaces).
const COMMENT_COLUMN: usize = 56;

/// The printed numbering of a graph: nodes in deterministic topological order (index order when
/// the graph has a cycle), and each node's number.
pub(crate) struct Numbering {
    pub(crate) order: Vec<NodeId>,
    pub(crate) number: HashMap<NodeId, usize>,
}

impl Numbering {
    pub(crate) fn of(g: &Graph) -> Numbering {
        let order = g.topo_order().unwrap_or_else(|_| g.dag.node_indices().collect());
        let number = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        Numbering { order, number }
    }
}

/// `%3`, `%4#1`, or `%?` for a node that does not exist.
pub(crate) fn value_name(num: &Numbering, v: Value) -> String {
    match (num.number.get(&v.node), v.index) {
        (Some(k), 0) => format!("%{k}"),
        (Some(k), i) => format!("%{k}#{i}"),
        (None, _) => "%?".to_string(),
    }
}

/// Prints a whole module.
pub fn print_module(m: &Module) -> String {
    let mut out = format!("module {}\n", name(&m.name));
    if !m.params.is_empty() {
        out.push('\n');
        for p in &m.params {
            out.push_str(&param_decl(p));
            out.push('\n');
        }
    }
    for f in &m.functions {
        out.push('\n');
        let num = Numbering::of(&f.graph);
        let ins: Vec<String> = f.graph.inputs.iter().map(|n| input_entry(&f.graph, &num, *n)).collect();
        let outs: Vec<String> = f
            .graph
            .outputs
            .iter()
            .map(|(o, v)| format!("{}: {}", name(o), type_of(&f.graph, *v)))
            .collect();
        let _ = writeln!(
            out,
            "func {}({}) -> ({}) {{",
            name(&f.name),
            ins.join(", "),
            outs.join(", ")
        );
        write_body(&mut out, &f.graph, &num, 1, "return", true);
        out.push_str("}\n");
    }
    out
}

/// Prints a function body alone: its nodes and its `return` line, without the `func` header.
pub fn print_graph(g: &Graph) -> String {
    let mut out = String::new();
    write_body(&mut out, g, &Numbering::of(g), 0, "return", true);
    out
}

/// A loop body without origins, as a key for comparing loops (CSE).
pub(crate) fn body_key(g: &Graph) -> String {
    let mut out = String::new();
    let num = Numbering::of(g);
    let ins: Vec<String> = g.inputs.iter().map(|n| input_entry(g, &num, *n)).collect();
    let _ = writeln!(out, "^({})", ins.join(", "));
    write_body(&mut out, g, &num, 0, "yield", false);
    out
}

fn param_decl(p: &ParamDecl) -> String {
    let init = match p.init {
        Init::Normal(s) => format!("normal({})", float(s)),
        Init::Uniform(b) => format!("uniform({})", float(b)),
        Init::Fill(v) if v == 0.0 && v.is_sign_positive() => "zeros".to_string(),
        Init::Fill(1.0) => "ones".to_string(),
        Init::Fill(v) => format!("fill({})", float(v)),
    };
    format!("param {}: {}{:?} init {init}", name(&p.name), p.dtype, p.shape)
}

fn type_of(g: &Graph, v: Value) -> String {
    match g.dag.node_weight(v.node).and_then(|n| n.outputs.get(v.index as usize)) {
        Some(t) => t.to_string(),
        None => "?".to_string(),
    }
}

/// A signature entry: `x: f32[B, 4]` for an input node, `%3: ...` for any other node.
fn input_entry(g: &Graph, num: &Numbering, n: NodeId) -> String {
    let v = Value::of(n);
    match g.dag.node_weight(n).map(|node| &node.op) {
        Some(Op::Input { name: nm }) => format!("{}: {}", name(nm), type_of(g, v)),
        _ => format!("{}: {}", value_name(num, v), type_of(g, v)),
    }
}

fn types(ts: &[TensorType]) -> String {
    if ts.is_empty() {
        return "()".to_string();
    }
    ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
}

fn write_body(out: &mut String, g: &Graph, num: &Numbering, depth: usize, end: &str, origins: bool) {
    let pad = "  ".repeat(depth);
    for &n in &num.order {
        let node = &g.dag[n];
        let k = num.number[&n];
        let def = match node.outputs.len() {
            1 => format!("%{k}"),
            len => format!("%{k}:{len}"),
        };
        let operands: Vec<String> = g.operands(n).into_iter().map(|v| value_name(num, v)).collect();
        let mut line = format!("{pad}{def} = {}", op_head(&node.op));
        if !operands.is_empty() {
            let _ = write!(line, " {}", operands.join(", "));
        }
        if let Op::Loop(l) = &node.op {
            out.push_str(&line);
            out.push_str(" {\n");
            let body_num = Numbering::of(&l.body);
            let ins: Vec<String> = l
                .body
                .inputs
                .iter()
                .map(|b| input_entry(&l.body, &body_num, *b))
                .collect();
            let _ = writeln!(out, "{pad}  ^({})", ins.join(", "));
            write_body(out, &l.body, &body_num, depth + 1, "yield", origins);
            line = format!("{pad}}}");
        }
        let _ = write!(line, " : {}", types(&node.outputs));
        match origin_comment(node).filter(|_| origins) {
            Some(c) => {
                let width = line.chars().count();
                let fill = if width + 2 <= COMMENT_COLUMN {
                    COMMENT_COLUMN - width
                } else {
                    2
                };
                let _ = writeln!(out, "{line}{}{c}", " ".repeat(fill));
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let rets: Vec<String> = g
        .outputs
        .iter()
        .map(|(o, v)| format!("{} = {}", name(o), value_name(num, *v)))
        .collect();
    if rets.is_empty() {
        let _ = writeln!(out, "{pad}{end}");
    } else {
        let _ = writeln!(out, "{pad}{end} {}", rets.join(", "));
    }
}

/// The `# name @ loc` comment of a node, if its origin is worth printing. An input's default
/// origin (its own name) is implied; an input with an empty origin prints `# ""`.
fn origin_comment(node: &crate::graph::Node) -> Option<String> {
    let o = &node.origin;
    if let Op::Input { name: nm } = &node.op {
        if o.name == *nm && o.loc.is_empty() {
            return None;
        }
        if *o == Origin::default() {
            return Some("# \"\"".to_string());
        }
    }
    if o.name.is_empty() && o.loc.is_empty() {
        return None;
    }
    let part = |s: &str| {
        let plain = s.trim() == s && !s.contains(['"', '@']) && !s.chars().any(char::is_control);
        if plain { s.to_string() } else { quote(s) }
    };
    let mut c = "#".to_string();
    if !o.name.is_empty() {
        c.push(' ');
        c.push_str(&part(&o.name));
    }
    if !o.loc.is_empty() {
        c.push_str(" @ ");
        c.push_str(&part(&o.loc));
    }
    Some(c)
}

/// The mnemonic with the op's attributes: `reduce_sum(axes=[2], keepdim=true)`, `input "x"`,
/// `const f32 0.5`, `loop(trips=N, max=64, carried=2, stop=true, emit=1)`.
pub(crate) fn op_head(op: &Op) -> String {
    let m = op.mnemonic();
    match op {
        Op::Input { name } | Op::Param { name } => format!("{m} {}", quote(name)),
        Op::Const(lit) => format!("const {}", literal(lit)),
        Op::DimSize(d) => format!("dim({d})"),
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::MatMul => m.to_string(),
        Op::Cast(t) => format!("cast({t})"),
        Op::Reduce { axes, keepdim, .. } => format!("{m}(axes={axes:?}, keepdim={keepdim})"),
        Op::ArgReduce { axis, keepdim, .. } => format!("{m}(axis={axis}, keepdim={keepdim})"),
        Op::Reshape(s) | Op::Expand(s) => format!("{m}({})", shape_to_string(s)),
        Op::Permute(p) => format!("{m}({p:?})"),
        Op::Slice { axis, start, end, step } => {
            format!("slice(axis={axis}, start={start}, end={end}, step={step})")
        }
        Op::Concat { axis } | Op::Gather { axis } | Op::Take { axis } | Op::Scatter { axis } => {
            format!("{m}(axis={axis})")
        }
        Op::DynamicUpdateSlice { axis } => format!("{m}(axis={axis})"),
        Op::Pad {
            axis,
            before,
            after,
            value,
        } => format!(
            "pad(axis={axis}, before={before}, after={after}, value={})",
            float(*value)
        ),
        Op::DynamicSlice { axis, size } => format!("{m}(axis={axis}, size={size})"),
        Op::Iota { shape, axis, dtype } => {
            format!("iota(shape={}, axis={axis}, dtype={dtype})", shape_to_string(shape))
        }
        Op::Cumsum {
            axis,
            exclusive,
            reverse,
        } => format!("cumsum(axis={axis}, exclusive={exclusive}, reverse={reverse})"),
        Op::TopK { k, axis, largest } => format!("topk(k={k}, axis={axis}, largest={largest})"),
        Op::RngUniform { shape } => format!("rng_uniform(shape={})", shape_to_string(shape)),
        Op::Loop(l) => format!(
            "loop(trips={}, max={}, carried={}, stop={}, emit={})",
            l.trips, l.max_trips, l.n_carried, l.has_stop, l.n_emit
        ),
    }
}

/// `f32 0.5` for a one-element scalar, `f32[2, 2] [1.0, 2.0, 3.0, 4.0]` otherwise.
fn literal(lit: &Literal) -> String {
    let elems: Vec<String> = match &lit.data {
        LiteralData::Float(v) if lit.dtype.is_float() => v.iter().map(|x| f32_element(*x)).collect(),
        LiteralData::Float(v) => v.iter().map(|x| float(*x)).collect(),
        LiteralData::Int(v) => v.iter().map(|x| x.to_string()).collect(),
        LiteralData::Bool(v) => v.iter().map(|x| x.to_string()).collect(),
    };
    if lit.shape.is_empty() && elems.len() == 1 {
        format!("{} {}", lit.dtype, elems[0])
    } else {
        format!("{}{:?} [{}]", lit.dtype, lit.shape, elems.join(", "))
    }
}
