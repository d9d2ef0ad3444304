//! The verifier: what it accepts, what it catches, and how it names the culprit.

mod common;
use common::*;
use mlc_ir::*;
use petgraph::visit::EdgeRef;

fn errors(m: &Module) -> Vec<String> {
    verify_module(m).unwrap_err().iter().map(|e| e.to_string()).collect()
}

fn node_with(g: &Graph, mnemonic: &str) -> NodeId {
    g.dag
        .node_indices()
        .find(|n| g.dag[*n].op.mnemonic() == mnemonic)
        .unwrap()
}

#[test]
fn well_formed_modules_verify() {
    for m in [mlp(), decoder(), kitchen_sink()] {
        verify_module(&m).unwrap();
    }
}

#[test]
fn a_corrupted_type_is_named_with_its_node_origin_and_types() {
    let mut m = mlp();
    let g = &mut m.functions[0].graph;
    let mm = node_with(g, "matmul");
    g.dag[mm].outputs[0] = ty(DType::F32, &["B", "9"]);
    let errs = errors(&m);
    assert!(
        errs.iter().any(|e| e
            == "func forward: %3 = matmul (h @ mlp.dsl:7:5): declares (f32[B, 9]) but `matmul` of (f32[B, 4], f32[4, 8]) gives (f32[B, 8])"),
        "{errs:#?}"
    );
    // The consumer now sees a bad operand type too.
    assert!(
        errs.iter()
            .any(|e| e.contains("%4 = add") && e.contains("cannot broadcast")),
        "{errs:#?}"
    );
}

#[test]
fn a_dangling_or_mistyped_param_is_caught() {
    let mut m = mlp();
    m.params.retain(|p| p.name != "l2.w");
    assert_eq!(
        errors(&m),
        ["func forward: %6 = param (l2.w): param `l2.w` is not declared in the module"]
    );
    let mut m = mlp();
    m.params[0].shape = vec![9];
    let errs = errors(&m);
    assert!(errs[0].contains("param `l1.b` is declared f32[9]"), "{errs:?}");
    // Params inside loop bodies are checked too.
    let mut m = decoder();
    let g = &mut m.functions[0].graph;
    let l = node_with(g, "loop");
    let Op::Loop(lp) = &mut g.dag[l].op else { panic!() };
    lp.body.add_typed(
        Op::Param { name: "nope".into() },
        &[],
        vec![ty(DType::F32, &[])],
        Origin::default(),
    );
    assert_eq!(
        errors(&m),
        ["func greedy, loop %2: %9 = param: param `nope` is not declared in the module"]
    );
}

#[test]
fn structural_breakage_is_caught() {
    // An input node missing from `inputs`, and an output that does not exist.
    let mut m = mlp();
    let g = &mut m.functions[0].graph;
    g.inputs.clear();
    g.outputs.push((
        "ghost".into(),
        Value {
            node: node_with(g, "tanh"),
            index: 3,
        },
    ));
    let errs = errors(&m);
    assert!(
        errs.iter().any(|e| e.contains("missing from the graph's inputs")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("output `ghost` is result 3")),
        "{errs:?}"
    );

    // Operand slots with a gap, and an edge from a result that does not exist.
    let mut m = mlp();
    let g = &mut m.functions[0].graph;
    let add = node_with(g, "add");
    let e = g
        .dag
        .edges_directed(add, petgraph::Direction::Incoming)
        .next()
        .unwrap()
        .id();
    g.dag[e].operand = 5;
    let t = node_with(g, "tanh");
    let e = g
        .dag
        .edges_directed(t, petgraph::Direction::Incoming)
        .next()
        .unwrap()
        .id();
    g.dag[e].result = 2;
    let errs = errors(&m);
    assert!(
        errs.iter()
            .any(|e| e.contains("%4 = add") && e.contains("are not 0..2")),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("uses result 2 of %4 = add")), "{errs:?}");

    // A cycle.
    let mut m = mlp();
    let g = &mut m.functions[0].graph;
    let (mm, t) = (node_with(g, "matmul"), node_with(g, "tanh"));
    let e = g.dag.find_edge(node_with(g, "input"), mm).unwrap();
    g.dag.remove_edge(e);
    g.dag.add_edge(t, mm, Edge { result: 0, operand: 0 });
    assert!(errors(&m).iter().any(|e| e.contains("cycle")));
    // Printing a broken graph still works.
    let _ = print_module(&m);
    let _ = to_dot(&m, "forward");
}

#[test]
fn loop_bodies_are_verified_recursively() {
    let mut m = decoder();
    let g = &mut m.functions[0].graph;
    let l = node_with(g, "loop");
    let Op::Loop(lp) = &mut g.dag[l].op else { panic!() };
    let gt = node_with(&lp.body, "gt");
    lp.body.dag[gt].outputs[0] = ty(DType::Bool, &["B"]);
    let errs = errors(&m);
    assert!(
        errs[0].starts_with("func greedy, loop %2: %6 = gt: declares (bool[B])"),
        "{errs:?}"
    );
}

#[test]
fn literals_and_names_are_checked() {
    let mut g = Graph::new();
    let c = konst(&mut g, i32s(&[1], &[1 << 40]));
    g.outputs.push(("c".into(), v(c)));
    let mut m = module("M", vec![], vec![("f", g.clone()), ("f", g)]);
    m.params = vec![decl("p", DType::F32, &[], Init::Fill(0.0)); 2];
    let errs = errors(&m);
    assert!(
        errs.contains(&"module M: param `p` is declared twice".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"module M: function `f` is defined twice".to_string()),
        "{errs:?}"
    );
    assert!(errs.iter().any(|e| e.contains("does not fit in i32")), "{errs:?}");
    let e = verify_graph(&m.functions[0].graph, &[]).unwrap_err();
    assert_eq!(e[0].location, "graph");
    assert_eq!(e[0].node.as_deref(), Some("%0 = const"));
}
