//! DOT export.

mod common;
use common::*;
use mlc_ir::*;

#[test]
fn dot_has_nodes_edges_and_loop_clusters() {
    let m = decoder();
    let dot = to_dot(&m, "greedy").unwrap();
    assert_eq!(to_dot(&m, "greedy").unwrap(), dot, "deterministic");
    assert!(to_dot(&m, "nope").is_none());
    assert!(dot.starts_with("digraph \"greedy\" {\n"));
    for s in [
        "  n0 [label=\"%0 = input \\\"h0\\\"\\nf32[B, 8]\", shape=ellipse];",
        "  n2 [label=\"%2 = loop(trips=N, max=64, carried=1, stop=true, emit=1)\\nf32[B, 8], i64[N, B]\", shape=box3d];",
        "  subgraph cluster_n2_ {",
        "    n2_3 [label=\"%3 = matmul\\nf32[B, 8]\"];",
        "    n2_1 -> n2_3 [label=\"0\"];",
        "    n2_3 -> n2_4;",
        "  n2 -> n2_0 [style=dashed, arrowhead=none, lhead=cluster_n2_];",
        "  n2 -> nout0 [label=\"#1\"];",
        "  nout0 [label=\"return picks\", shape=plaintext];",
    ] {
        assert!(dot.lines().any(|l| l == s), "missing `{s}` in\n{dot}");
    }
    // Long literals are cut.
    let mut g = Graph::new();
    let c = konst(&mut g, f32s(&[100], &[1.5; 100]));
    g.outputs.push(("c".into(), v(c)));
    let dot = graph_to_dot(&g, "c");
    assert!(
        dot.contains("const f32[100] [1.5, 1.5,") && dot.contains("...\\nf32[100]"),
        "{dot}"
    );
}
