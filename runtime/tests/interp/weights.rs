use half::f16;
use mlc_ir::{BinaryOp, Bindings, DType, Init, Module, Op, ParamDecl};
use mlc_runtime::{
    RunOptions, RuntimeError, Tensor, WeightError, Weights, init_inputs, init_weights, run, safetensors_io,
};

use crate::common::*;

fn param(name: &str, dtype: DType, shape: &[u64], init: Init) -> ParamDecl {
    ParamDecl {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        init,
    }
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mlc-runtime-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `y = x @ w + b` with `w: f32[2, 2]`, `b: f32[2]`.
fn linear_module() -> Module {
    let mut g = G::new();
    let x = g.input("x", DType::F32, &["B", "2"]);
    let w = mlc_ir::Value::of(g.g.add_typed(
        Op::Param { name: "w".into() },
        &[],
        vec![ty(DType::F32, &["2", "2"])],
        at("w", ""),
    ));
    let b = mlc_ir::Value::of(g.g.add_typed(
        Op::Param { name: "b".into() },
        &[],
        vec![ty(DType::F32, &["2"])],
        at("b", ""),
    ));
    let xw = g.op(Op::MatMul, &[x, w]);
    let y = g.op(Op::Binary(BinaryOp::Add), &[xw, b]);
    g.out("y", y);
    let mut m = g.module();
    m.params = vec![
        param("b", DType::F32, &[2], Init::Fill(0.0)),
        param("w", DType::F32, &[2, 2], Init::Normal(1.0)),
    ];
    m
}

#[test]
fn params_feed_the_graph() {
    let m = linear_module();
    let weights = Weights::from_tensors(
        &m,
        vec![
            ("w".into(), f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0])),
            ("b".into(), f32s(&[2], &[10.0, 20.0])),
        ],
    )
    .unwrap();
    let x = vec![("x".to_string(), f32s(&[2, 2], &[1.0, 1.0, 0.0, -1.0]))];
    let out = run(&m, "f", &weights, &x, &RunOptions::default()).unwrap();
    assert_eq!(out[0].0, "y");
    assert_eq!(out[0].1.as_f32().unwrap(), &[14.0, 26.0, 7.0, 16.0]);
    let err = run(&m, "f", &Weights::default(), &x, &RunOptions::default()).unwrap_err();
    assert!(matches!(err, RuntimeError::MissingWeight { .. }), "{err}");
}

#[test]
fn every_mismatch_is_reported_with_both_types() {
    let m = Module {
        name: "m".into(),
        params: vec![
            param("b", DType::F32, &[4], Init::Fill(0.0)),
            param("c", DType::F32, &[3], Init::Fill(0.0)),
            param("enc.w_ih", DType::F32, &[512, 2], Init::Normal(0.1)),
            param("ok", DType::I64, &[2], Init::Fill(1.0)),
        ],
        functions: vec![],
    };
    let p = tmp("mismatch.safetensors");
    let half = Tensor::from_f16(&[4], vec![f16::ZERO; 4]);
    safetensors_io::save(
        &p,
        &[
            ("b".into(), half),
            ("enc.w_ih".into(), Tensor::zeros(DType::F32, &[2, 512])),
            ("ok".into(), i64s(&[2], &[1, 2])),
            ("junk".into(), Tensor::scalar_f32(0.0)),
        ],
    )
    .unwrap();
    let file = safetensors_io::load(&p).unwrap();
    let errors = Weights::bind(&m, &file).unwrap_err();
    let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        msgs,
        vec![
            "weight `b`: expected f32[4], file has f16[4]",
            "weight `c`: expected f32[3], the file has no such tensor",
            "weight `enc.w_ih`: expected f32[512, 2], file has f32[2, 512]",
        ]
    );
    assert!(matches!(errors[1], WeightError::Missing { .. }));
    let as_runtime: RuntimeError = errors.into();
    assert_eq!(as_runtime.to_string().lines().count(), 3);
}

#[test]
fn bind_from_file_lists_unused_tensors() {
    let m = linear_module();
    let p = tmp("linear.safetensors");
    let mut tensors = init_weights(&m, 7);
    tensors.push(("extra.bias".into(), Tensor::scalar_f32(1.0)));
    safetensors_io::save(&p, &tensors).unwrap();
    let file = safetensors_io::load(&p).unwrap();
    let w = Weights::bind(&m, &file).unwrap();
    assert_eq!(w.unused(), &["extra.bias".to_string()]);
    assert_eq!(w.get("w"), Some(&tensors[1].1));
    assert_eq!(w.len(), 2);
}

#[test]
fn init_weights_is_deterministic_and_follows_init() {
    let m = Module {
        name: "m".into(),
        params: vec![
            param("f", DType::BF16, &[3], Init::Fill(0.5)),
            param("n", DType::F32, &[4096], Init::Normal(0.1)),
            param("u", DType::F32, &[1000], Init::Uniform(0.25)),
        ],
        functions: vec![],
    };
    let a = init_weights(&m, 3);
    assert_eq!(a, init_weights(&m, 3));
    assert_ne!(a[1].1, init_weights(&m, 4)[1].1);
    assert_eq!(a[0].1.dtype(), DType::BF16);
    assert_eq!(a[0].1.to_f32_vec(), vec![0.5; 3]);
    let n = a[1].1.as_f32().unwrap();
    let var = n.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() / n.len() as f64;
    assert!((var.sqrt() - 0.1).abs() < 0.005, "std {}", var.sqrt());
    let u = a[2].1.as_f32().unwrap();
    assert!(u.iter().all(|x| x.abs() <= 0.25));
    assert!(u.iter().any(|&x| x > 0.2) && u.iter().any(|&x| x < -0.2));
}

#[test]
fn init_inputs_follow_the_declared_types() {
    let mut g = G::new();
    let a = g.input("a", DType::F32, &["B", "3"]);
    let i = g.input("i", DType::I64, &["B"]);
    let m = g.input("m", DType::Bool, &["B"]);
    g.out("a", a);
    g.out("i", i);
    g.out("m", m);
    let module = g.module();
    let f = &module.functions[0];
    let b = Bindings::from([("B".to_string(), 500)]);
    let inputs = init_inputs(f, &b, 1).unwrap();
    assert_eq!(inputs, init_inputs(f, &b, 1).unwrap());
    assert_eq!(inputs[0].1.shape(), &[500, 3]);
    let ints = inputs[1].1.as_i64().unwrap();
    assert!(ints.iter().all(|&v| (0..2).contains(&v)) && ints.contains(&0) && ints.contains(&1));
    let trues = inputs[2].1.as_bool().unwrap().iter().filter(|&&t| t).count();
    assert!((150..350).contains(&trues), "{trues}");
    let out = run(&module, "f", &Weights::default(), &inputs, &RunOptions::default()).unwrap();
    assert_eq!(out[1].1, inputs[1].1);
    let err = init_inputs(f, &Bindings::new(), 1).unwrap_err();
    assert!(matches!(err, RuntimeError::UnboundDim { .. }), "{err}");
}
