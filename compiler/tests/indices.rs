//! Out-of-range indices in embedding lookups, `take`, `gather` and `scatter`: an error naming
//! the op, its place in the source and the offending index, the same on the interpreter and the
//! CPU backend (whatever the fusion made of the op there).

use mlc_compiler::driver::compile_source_optimized;
use mlc_compiler::lower::LowerOptions;
use mlc_ir::Module;
use mlc_runtime::{Model, RunOptions, RuntimeError, Tensor, Weights, init_weights};

const MODEL: &str = r#"import std.nn.{Embedding}

model Indexing(vocab: int = 5, d: int = 4) {
  embed = Embedding(vocab, d)

  entry lookup(ids: i64[B, T]) {
    return embed(ids) * 2.0
  }

  entry rows(table: f32[V, D], ids: i64[K]) {
    return take(table, ids) + 1.0
  }

  entry pick(x: f32[B, N], idx: i64[B, K]) {
    return gather(x, idx, 1) * 3.0
  }

  entry mark(x: f32[B, N], idx: i64[B, K]) {
    return scatter(x, idx, 1.0, 1) - 1.0
  }
}
"#;

fn module() -> Module {
    compile_source_optimized("indexing.dsl", MODEL, &LowerOptions::default()).unwrap()
}

fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape, v.to_vec())
}

fn f32s(shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(shape, (0..n).map(|i| i as f32).collect())
}

fn run_both(
    module: &Module,
    entry: &str,
    inputs: &[(&str, Tensor)],
) -> [Result<Vec<(String, Tensor)>, RuntimeError>; 2] {
    let inputs: Vec<(String, Tensor)> = inputs.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
    let weights = Weights::from_tensors(module, init_weights(module, 0)).unwrap();
    let interp = mlc_runtime::run(module, entry, &weights, &inputs, &RunOptions::default());
    let mut model = Model::from_module(module.clone()).unwrap();
    model.set_weights(weights);
    let mut session = model.session().unwrap();
    session.set_threads(1);
    let cpu = session.run(entry, &inputs);
    [interp, cpu]
}

/// A case: entry, inputs, the op the error must name, the bad index and the axis size.
type Case<'a> = (&'a str, Vec<(&'a str, Tensor)>, &'a str, i64, usize);

#[test]
fn out_of_range_indices_are_errors_on_both_backends() {
    let m = module();
    let cases: Vec<Case> = vec![
        ("lookup", vec![("ids", i64s(&[2, 2], &[0, 4, 5, 1]))], "take", 5, 5),
        ("lookup", vec![("ids", i64s(&[1, 2], &[-1, 1]))], "take", -1, 5),
        (
            "rows",
            vec![("table", f32s(&[3, 2])), ("ids", i64s(&[3], &[2, 3, 0]))],
            "take",
            3,
            3,
        ),
        (
            "pick",
            vec![("x", f32s(&[2, 3])), ("idx", i64s(&[2, 2], &[0, 2, 1, 9]))],
            "gather",
            9,
            3,
        ),
        (
            "pick",
            vec![("x", f32s(&[2, 3])), ("idx", i64s(&[2, 1], &[-3, 0]))],
            "gather",
            -3,
            3,
        ),
        (
            "mark",
            vec![("x", f32s(&[2, 3])), ("idx", i64s(&[2, 1], &[1, 3]))],
            "scatter",
            3,
            3,
        ),
        (
            "mark",
            vec![("x", f32s(&[2, 3])), ("idx", i64s(&[2, 1], &[-1, 0]))],
            "scatter",
            -1,
            3,
        ),
    ];
    for (entry, inputs, op_name, bad, n) in cases {
        let results = run_both(&m, entry, &inputs);
        for (backend, result) in ["interp", "cpu"].into_iter().zip(results) {
            let err = match result {
                Err(e) => e,
                Ok(out) => panic!("{entry} ({backend}): index {bad} accepted: {out:?}"),
            };
            match &err {
                RuntimeError::IndexOutOfRange { op, index, size, .. } => {
                    assert_eq!((*op, *index, *size), (op_name, bad, n), "{entry} ({backend}): {err}");
                }
                other => panic!("{entry} ({backend}): expected IndexOutOfRange, got {other}"),
            }
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("`{op_name}` at ")) && msg.contains(&format!("index {bad} is out of range")),
                "{entry} ({backend}): {msg}"
            );
            // The origin points into the program (the entry's file or the standard library).
            assert!(msg.contains(".dsl:"), "{entry} ({backend}): {msg}");
        }
    }
}

#[test]
fn in_range_indices_agree_on_both_backends() {
    let m = module();
    let cases: Vec<(&str, Vec<(&str, Tensor)>)> = vec![
        ("lookup", vec![("ids", i64s(&[2, 2], &[0, 4, 3, 1]))]),
        ("rows", vec![("table", f32s(&[3, 2])), ("ids", i64s(&[3], &[2, 2, 0]))]),
        (
            "pick",
            vec![("x", f32s(&[2, 3])), ("idx", i64s(&[2, 2], &[0, 2, 1, 1]))],
        ),
        ("mark", vec![("x", f32s(&[2, 3])), ("idx", i64s(&[2, 1], &[1, 2]))]),
    ];
    for (entry, inputs) in cases {
        let [interp, cpu] = run_both(&m, entry, &inputs);
        assert_eq!(interp.unwrap(), cpu.unwrap(), "{entry}");
    }
    // Spot values: rows 2, 2, 0 of [[0, 1], [2, 3], [4, 5]], plus 1.
    let [rows, _] = run_both(&m, "rows", &[("table", f32s(&[3, 2])), ("ids", i64s(&[3], &[2, 2, 0]))]);
    assert_eq!(rows.unwrap()[0].1.as_f32().unwrap(), &[5.0, 6.0, 5.0, 6.0, 1.0, 2.0]);
}
