use mlc_ir::{DType, Dim, Literal, LiteralData, Op};
use mlc_runtime::Tensor;

use crate::common::*;

#[test]
fn const_iota_and_dim() {
    let mut g = G::new();
    let _x = g.input("x", DType::F32, &["B", "2"]);
    let lit = Literal {
        dtype: DType::BF16,
        shape: vec![2],
        data: LiteralData::Float(vec![0.5, -3.0]),
    };
    let c = g.op(Op::Const(lit), &[]);
    let i = g.op(
        Op::Iota {
            shape: sh(&["B", "3"]),
            axis: 1,
            dtype: DType::I32,
        },
        &[],
    );
    let d = g.op(Op::DimSize(Dim::parse("2*B + 1").unwrap()), &[]);
    g.out("c", c);
    g.out("i", i);
    g.out("d", d);
    let out = run_graph(g, vec![("x", f32s(&[2, 2], &[0.0; 4]))]).unwrap();
    assert_eq!(out[0].dtype(), DType::BF16);
    assert_eq!(out[0].to_f32_vec(), vec![0.5, -3.0]);
    assert_eq!(out[1].as_i32().unwrap(), &[0, 1, 2, 0, 1, 2]);
    assert_eq!(out[2].as_i64().unwrap(), &[5]);
}

fn rng(shape: &[&str], seed: i64, offset: i64) -> Tensor {
    let mut g = G::new();
    let s = g.input("seed", DType::I64, &[]);
    let o = g.input("offset", DType::I64, &[]);
    let r = g.op(Op::RngUniform { shape: sh(shape) }, &[s, o]);
    g.out("u", r);
    run1(
        g,
        vec![
            ("seed", Tensor::scalar_i64(seed)),
            ("offset", Tensor::scalar_i64(offset)),
        ],
    )
}

#[test]
fn rng_matches_the_philox_stream() {
    // Seed 0, offset 0: elements 0..4 are the Philox-4x32-10 known answer for counter 0, key 0,
    // shifted right by 8 and scaled by 2^-24.
    let u = rng(&["2", "2"], 0, 0);
    let words = [0x6627e8d5u32, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];
    let want: Vec<f32> = words.iter().map(|w| (w >> 8) as f32 / 16_777_216.0).collect();
    assert_eq!(u.as_f32().unwrap(), want.as_slice());
}

#[test]
fn rng_is_deterministic_and_uniform() {
    let a = rng(&["100", "100"], 1234, 5);
    let b = rng(&["100", "100"], 1234, 5);
    assert_eq!(a, b);
    assert_ne!(a, rng(&["100", "100"], 1234, 6));
    assert_ne!(a, rng(&["100", "100"], -1234, 5));
    let v = a.as_f32().unwrap();
    assert!(v.iter().all(|u| (0.0..1.0).contains(u)));
    let mean = v.iter().map(|&u| f64::from(u)).sum::<f64>() / v.len() as f64;
    assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    let below = v.iter().filter(|&&u| u < 0.25).count() as f64 / v.len() as f64;
    assert!((below - 0.25).abs() < 0.02, "fraction below 0.25: {below}");
}
