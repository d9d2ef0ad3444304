//! From a Graph IR function to a plan: buffers for the values that need one, and one step per
//! buffered value in topological order.

use std::borrow::Cow;
use std::collections::HashMap;

use mlc_ir::plan::{BufId, BufKind, FunctionPlan, ModulePlan, PlanBuf, Step};
use mlc_ir::{DType, Graph, KernelFn, Module, NodeId, Op, Value};

use crate::SchedError;
use crate::attention::{AttnMatch, find_attention};
use crate::classify::{Class, buffered_values, classify, transposed_source};
use crate::epilogue::fuse_epilogues;
use crate::kernel_gen::KernelBuilder;

/// Plans every entry point of a module.
pub fn plan_module(m: &Module) -> Result<ModulePlan, SchedError> {
    let mut planner = Planner { kernels: Vec::new() };
    let mut functions = Vec::new();
    for f in &m.functions {
        functions.push(planner.plan_graph(&f.name, &f.graph)?);
    }
    let mut plan = ModulePlan {
        kernels: planner.kernels,
        functions,
    };
    fuse_epilogues(&mut plan);
    Ok(plan)
}

struct Planner {
    kernels: Vec<KernelFn>,
}

impl Planner {
    fn plan_graph(&mut self, name: &str, g: &Graph) -> Result<FunctionPlan, SchedError> {
        let err = |message: String| SchedError {
            function: name.to_string(),
            message,
        };
        // Attention recognition may add nodes (combined masks): then a copy of the graph is
        // planned.
        let mut graph = Cow::Borrowed(g);
        let attn = find_attention(&mut graph);
        let g = &*graph;
        let order = g
            .topo_order()
            .map_err(|n| err(format!("cycle through node {}", n.index())))?;
        // Nodes added for an attention's operands have no edge to it: plan them right before it.
        let added: std::collections::HashSet<NodeId> = attn.values().flat_map(|a| a.added.iter().copied()).collect();
        let order: Vec<NodeId> = order
            .into_iter()
            .filter(|n| !added.contains(n))
            .flat_map(|n| {
                let mut before = attn.get(&n).map(|a| a.added.clone()).unwrap_or_default();
                before.push(n);
                before
            })
            .collect();
        let class: HashMap<NodeId, Class> = order.iter().map(|&n| (n, classify(g, n))).collect();
        let buffered = buffered_values(g, &order, &class, &attn);

        // Buffers, in topological order of their values (inputs first, in input order).
        let mut plan = FunctionPlan {
            name: name.to_string(),
            ..FunctionPlan::default()
        };
        let mut buffers: HashMap<Value, BufId> = HashMap::new();
        for &n in &g.inputs {
            let id = add_buf(&mut plan, g, Value::of(n), BufKind::Input);
            buffers.insert(Value::of(n), id);
            plan.inputs.push(id);
        }
        for &n in &order {
            let node = g.node(n);
            for i in 0..node.outputs.len() {
                let v = Value {
                    node: n,
                    index: i as u32,
                };
                if !buffered.contains(&v) || buffers.contains_key(&v) {
                    continue;
                }
                let kind = match &node.op {
                    Op::Param { name } => BufKind::Param(name.clone()),
                    Op::Const(lit) => BufKind::Const(lit.clone()),
                    _ => BufKind::Temp,
                };
                buffers.insert(v, add_buf(&mut plan, g, v, kind));
            }
        }
        let dtypes: Vec<DType> = plan.bufs.iter().map(|b| b.ty.dtype).collect();

        // One step per computed buffer that an output depends on: dead code never runs, as in
        // the interpreter (it could fail).
        let live = live_nodes(g, &attn);
        for &n in &order {
            if !live.contains(&n) {
                continue;
            }
            let node = g.node(n);
            let v0 = Value::of(n);
            if !buffers.contains_key(&v0) {
                continue;
            }
            let kname = || {
                let what = if node.origin.name.is_empty() {
                    node.op.mnemonic().to_string()
                } else {
                    sanitize(&node.origin.name)
                };
                format!("{name}_{}_{what}", n.index())
            };
            match class[&n] {
                Class::Leaf => {}
                Class::Free if matches!(node.op, Op::Const(_)) => {}
                Class::Free | Class::Elementwise | Class::Movement | Class::Reduce => {
                    let kb = KernelBuilder::new(g, &buffers, &dtypes, name);
                    let (k, args, dims) = kb.kernel(kname(), v0, buffers[&v0])?;
                    self.push_kernel(&mut plan, k, args, dims);
                }
                Class::MatMul if attn.contains_key(&n) => {
                    let a = &attn[&n];
                    plan.steps.push(Step::Attention {
                        q: buffers[&a.q],
                        k: buffers[&a.k],
                        v: buffers[&a.v],
                        out: buffers[&v0],
                        scale: a.scale,
                        causal: a.causal,
                        bool_mask: a.bool_mask.map(|m| buffers[&m]),
                        additive_mask: a.additive_mask.map(|m| buffers[&m]),
                        origin: node.origin.clone(),
                    });
                }
                Class::MatMul => {
                    let ops = g.operands(n);
                    let (b, b_transposed) = match transposed_source(g, ops[1]) {
                        Some(src) if buffers.contains_key(&src) && !buffers.contains_key(&ops[1]) => {
                            (buffers[&src], true)
                        }
                        _ => (buffers[&ops[1]], false),
                    };
                    plan.steps.push(Step::MatMul {
                        a: buffers[&ops[0]],
                        b,
                        out: buffers[&v0],
                        b_transposed,
                        epilogue: mlc_ir::MatMulEpilogue::default(),
                        origin: node.origin.clone(),
                    });
                }
                Class::Opaque => {
                    let inputs = g.operands(n).iter().map(|v| buffers[v]).collect();
                    let outputs = result_bufs(&buffers, n, node.outputs.len());
                    plan.steps.push(Step::Op {
                        op: node.op.clone(),
                        inputs,
                        outputs,
                        origin: node.origin.clone(),
                    });
                }
                Class::Loop => {
                    let Op::Loop(l) = &node.op else {
                        unreachable!("classified as a loop")
                    };
                    let body = self.plan_graph(&format!("{name}_loop{}", n.index()), &l.body)?;
                    let operands = g.operands(n).iter().map(|v| buffers[v]).collect();
                    let outputs = result_bufs(&buffers, n, node.outputs.len());
                    plan.steps.push(Step::Loop {
                        trips: l.trips.clone(),
                        max_trips: l.max_trips,
                        n_carried: l.n_carried,
                        has_stop: l.has_stop,
                        n_emit: l.n_emit,
                        operands,
                        outputs,
                        body: Box::new(body),
                        origin: node.origin.clone(),
                    });
                }
            }
        }
        for (out_name, v) in &g.outputs {
            let b = *buffers
                .get(v)
                .ok_or_else(|| err(format!("output `{out_name}` has no buffer")))?;
            plan.outputs.push((out_name.clone(), b));
        }
        Ok(plan)
    }

    fn push_kernel(&mut self, plan: &mut FunctionPlan, k: KernelFn, args: Vec<BufId>, dims: Vec<String>) {
        let id = self.kernels.len() as u32;
        self.kernels.push(k);
        plan.steps.push(Step::Kernel {
            kernel: id,
            bufs: args,
            dims: dims.iter().map(|d| mlc_ir::Dim::sym(d)).collect(),
        });
    }
}

fn add_buf(plan: &mut FunctionPlan, g: &Graph, v: Value, kind: BufKind) -> BufId {
    let node = g.node(v.node);
    plan.bufs.push(PlanBuf {
        ty: g.ty(v).clone(),
        kind,
        name: node.origin.name.clone(),
    });
    (plan.bufs.len() - 1) as BufId
}

/// A kernel name from a binding name: identifier characters only.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The nodes the outputs depend on (an attention root on its step's operands too).
fn live_nodes(g: &Graph, attn: &HashMap<NodeId, AttnMatch>) -> std::collections::HashSet<NodeId> {
    let mut live = std::collections::HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs.iter().map(|(_, v)| v.node).collect();
    while let Some(n) = stack.pop() {
        if live.insert(n) {
            stack.extend(g.operands(n).iter().map(|v| v.node));
            if let Some(a) = attn.get(&n) {
                stack.extend(a.operands().iter().map(|v| v.node));
            }
        }
    }
    live
}

/// The buffers of a node's results, in order.
fn result_bufs(buffers: &HashMap<Value, BufId>, n: NodeId, count: usize) -> Vec<BufId> {
    (0..count)
        .map(|i| {
            buffers[&Value {
                node: n,
                index: i as u32,
            }]
        })
        .collect()
}
