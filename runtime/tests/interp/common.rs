//! Helpers to build tiny graphs and run them.

#![allow(dead_code)]

use mlc_ir::{DType, Dim, Function, Graph, Module, NodeId, Op, Origin, TensorType, Value};
use mlc_runtime::{RunOptions, RuntimeError, Tensor, Weights, run};

/// A shape from dim spellings: `sh(&["B", "3"])`.
pub fn sh(dims: &[&str]) -> Vec<Dim> {
    dims.iter().map(|d| Dim::parse(d).unwrap()).collect()
}

pub fn ty(dtype: DType, dims: &[&str]) -> TensorType {
    TensorType::new(dtype, sh(dims))
}

pub fn at(name: &str, loc: &str) -> Origin {
    Origin {
        name: name.into(),
        loc: loc.into(),
    }
}

/// A graph under construction.
#[derive(Default)]
pub struct G {
    pub g: Graph,
}

impl G {
    pub fn new() -> G {
        G::default()
    }
    pub fn input(&mut self, name: &str, dtype: DType, dims: &[&str]) -> Value {
        Value::of(self.g.add_input(name, ty(dtype, dims)))
    }
    pub fn op(&mut self, op: Op, operands: &[Value]) -> Value {
        Value::of(self.node(op, operands))
    }
    pub fn node(&mut self, op: Op, operands: &[Value]) -> NodeId {
        self.g.add(op, operands, Origin::default()).unwrap()
    }
    pub fn op_at(&mut self, op: Op, operands: &[Value], origin: Origin) -> Value {
        Value::of(self.g.add(op, operands, origin).unwrap())
    }
    pub fn out(&mut self, name: &str, v: Value) {
        self.g.outputs.push((name.to_string(), v));
    }
    pub fn module(self) -> Module {
        Module {
            name: "m".into(),
            params: vec![],
            functions: vec![Function {
                name: "f".into(),
                graph: self.g,
            }],
        }
    }
}

pub fn named(inputs: Vec<(&str, Tensor)>) -> Vec<(String, Tensor)> {
    inputs.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
}

/// Runs entry `f` of the graph's module (no weights) and returns the output tensors.
pub fn run_graph(g: G, inputs: Vec<(&str, Tensor)>) -> Result<Vec<Tensor>, RuntimeError> {
    let module = g.module();
    let out = run(
        &module,
        "f",
        &Weights::default(),
        &named(inputs),
        &RunOptions::default(),
    )?;
    Ok(out.into_iter().map(|(_, t)| t).collect())
}

/// Runs and returns the single output.
pub fn run1(g: G, inputs: Vec<(&str, Tensor)>) -> Tensor {
    run_graph(g, inputs).unwrap().remove(0)
}

/// A one-op graph over f32 inputs of the given shapes.
pub fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape, v.to_vec())
}

pub fn i64s(shape: &[usize], v: &[i64]) -> Tensor {
    Tensor::from_i64(shape, v.to_vec())
}

pub fn bools(shape: &[usize], v: &[bool]) -> Tensor {
    Tensor::from_bool(shape, v.to_vec())
}
