//! The public runtime API: a [`Model`] (a planned, compiled module with its weights) and the
//! [`Session`]s that run it.
//!
//! A model is immutable while shared: it is `Send + Sync`, cheap to clone (reference counted),
//! and any number of sessions, on any threads, run it at once. A session holds the per-run
//! state (its settings, its thread pool, and the arena its intermediate buffers live in) and
//! is `Send`; use one session per thread.

use std::path::Path;
use std::sync::Arc;

use mlc_ir::{Module, ModulePlan, Op};
use mlc_kernels::ThreadPool;

use crate::cpu::{Arena, Program, default_threads};
use crate::error::RuntimeError;
use crate::interp::RunOptions;
use crate::package;
use crate::safetensors_io::{self, TensorFile};
use crate::tensor::Tensor;
use crate::weights::{WeightError, Weights};

/// A compiled model: its Graph IR module, its execution plan with compiled CPU kernels, and
/// its weights.
///
/// Build one from a package ([`Model::load`]) or a module ([`Model::from_module`]), bind
/// weights ([`Model::bind_weights`], [`Model::set_weights`], or [`Model::load_with_weights`]
/// in one call), then run it through [`Model::session`]. Binding weights replaces them for
/// sessions created afterwards; sessions already open keep the weights they started with.
///
/// ```
/// use mlc_ir::{DType, Dim, Graph, Module, Op, Origin, TensorType, Value, Function, BinaryOp};
/// use mlc_runtime::{Model, Tensor};
///
/// // y = x * x, for x: f32[N]
/// let mut g = Graph::new();
/// let x = g.add_input("x", TensorType::new(DType::F32, vec![Dim::sym("N")]));
/// let y = g.add(Op::Binary(BinaryOp::Mul), &[Value::of(x), Value::of(x)], Origin::default())?;
/// g.outputs.push(("y".into(), Value::of(y)));
/// let module = Module {
///     name: "square".into(),
///     params: vec![],
///     functions: vec![Function { name: "forward".into(), graph: g }],
/// };
///
/// let model = Model::from_module(module)?;
/// let mut session = model.session()?;
/// session.set_threads(2);
/// let out = session.run("forward", &[("x".into(), Tensor::from_f32(&[3], vec![1.0, 2.0, 3.0]))])?;
/// assert_eq!(out[0].0, "y");
/// assert_eq!(out[0].1.as_f32(), Some(&[1.0f32, 4.0, 9.0][..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// From files (a package written by `mlc build` and a safetensors checkpoint):
///
/// ```no_run
/// # use mlc_runtime::{Model, Tensor};
/// let model = Model::load_with_weights("model.mlcpkg", "model.safetensors")?;
/// let mut session = model.session()?;
/// let outputs = session.run("forward", &[("x".into(), Tensor::from_f32(&[2, 3], vec![0.0; 6]))])?;
/// # Ok::<(), mlc_runtime::RuntimeError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Model {
    module: Arc<Module>,
    program: Arc<Program>,
    weights: Arc<Weights>,
}

impl Model {
    /// Reads a `.mlcpkg` package (checking its version and checksum) and plans and compiles
    /// it. Weights are bound separately.
    pub fn load(package_path: impl AsRef<Path>) -> Result<Model, RuntimeError> {
        Model::from_module(package::load(package_path)?)
    }

    /// [`Model::load`], then [`Model::bind_weights`] with the safetensors file at
    /// `weights_path` (memory-mapped; every parameter checked by name, dtype and shape).
    pub fn load_with_weights(
        package_path: impl AsRef<Path>,
        weights_path: impl AsRef<Path>,
    ) -> Result<Model, RuntimeError> {
        let mut model = Model::load(package_path)?;
        let file = safetensors_io::load(weights_path)?;
        model.bind_weights(&file)?;
        Ok(model)
    }

    /// Plans a module (fusion into kernels, see `mlc_sched`) and compiles its kernels.
    pub fn from_module(module: Module) -> Result<Model, RuntimeError> {
        let plan = mlc_sched::plan_module(&module).map_err(|e| RuntimeError::Plan { message: e.to_string() })?;
        Model::from_plan(module, plan)
    }

    /// A model running a given plan of `module` (for plans built by other means, and tests).
    /// The plan is checked, and its entry points' inputs take the names the module gives them.
    pub fn from_plan(module: Module, mut plan: ModulePlan) -> Result<Model, RuntimeError> {
        for fp in &mut plan.functions {
            let Some(f) = module.function(&fp.name) else {
                continue;
            };
            if f.graph.inputs.len() != fp.inputs.len() {
                return Err(RuntimeError::Plan {
                    message: format!(
                        "`{}`: the plan has {} inputs, the module's entry point {}",
                        fp.name,
                        fp.inputs.len(),
                        f.graph.inputs.len()
                    ),
                });
            }
            for (&n, &b) in f.graph.inputs.iter().zip(&fp.inputs) {
                if let (Some(node), Some(buf)) = (f.graph.dag.node_weight(n), fp.bufs.get_mut(b as usize))
                    && let Op::Input { name } = &node.op
                {
                    buf.name = name.clone();
                }
            }
        }
        let program = Program::new(plan)?;
        // Unbound until `bind_weights`; `session` reports what is missing.
        Ok(Model {
            module: Arc::new(module),
            program: Arc::new(program),
            weights: Arc::new(Weights::default()),
        })
    }

    /// Binds every parameter to the tensor of the same name in `file`, checking dtypes and
    /// shapes (all problems reported together, see [`Weights::bind`]).
    pub fn bind_weights(&mut self, file: &TensorFile) -> Result<(), RuntimeError> {
        self.weights = Arc::new(Weights::bind(&self.module, file)?);
        Ok(())
    }

    /// Uses weights bound to this model's module, e.g. by [`Weights::from_tensors`] with
    /// tensors in memory or [`crate::init_weights`].
    pub fn set_weights(&mut self, weights: Weights) {
        self.weights = Arc::new(weights);
    }

    /// The Graph IR module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The execution plan.
    pub fn plan(&self) -> &ModulePlan {
        self.program.plan()
    }

    /// The bound weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The names of the entry points.
    pub fn entries(&self) -> Vec<&str> {
        self.plan().functions.iter().map(|f| f.name.as_str()).collect()
    }

    /// A new session, with one thread per available core. Fails, listing them, if some
    /// parameters of the module have no weight bound.
    pub fn session(&self) -> Result<Session, RuntimeError> {
        let missing: Vec<WeightError> = self
            .module
            .params
            .iter()
            .filter(|p| self.weights.get(&p.name).is_none())
            .map(|p| WeightError::Missing {
                name: p.name.clone(),
                expected: format!(
                    "{}[{}]",
                    p.dtype,
                    p.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                ),
            })
            .collect();
        if !missing.is_empty() {
            return Err(RuntimeError::Weights(missing));
        }
        Ok(Session {
            program: self.program.clone(),
            weights: self.weights.clone(),
            opts: RunOptions::default(),
            threads: default_threads(),
            pool: None,
            arena: Arena::default(),
        })
    }
}

/// Runs a [`Model`]: one run at a time per session, any number of sessions at once.
///
/// A session owns its thread pool (one thread per core unless [`Session::set_threads`] says
/// otherwise; the calling thread is one of them; started at the first run) and the state of
/// its runs: one arena for every intermediate buffer, laid out per entry point and set of dim
/// bindings (cached, recomputed only when the dims change) and allocated once, growing only
/// when a layout needs more (see [`crate::cpu::arena`]).
#[derive(Debug)]
pub struct Session {
    program: Arc<Program>,
    weights: Arc<Weights>,
    opts: RunOptions,
    threads: usize,
    pool: Option<ThreadPool>,
    arena: Arena,
}

impl Session {
    /// Runs the entry point `entry` on named inputs and returns its named outputs, in the
    /// entry's output order.
    ///
    /// Every declared input must be given exactly once with its dtype and rank; symbolic dims
    /// are bound from the input shapes. Results are deterministic: the same inputs give the
    /// same bits whatever the number of threads.
    pub fn run(&mut self, entry: &str, inputs: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>, RuntimeError> {
        let threads = self.threads;
        let pool = self.pool.get_or_insert_with(|| ThreadPool::new(threads));
        self.program.run(
            entry,
            &self.weights,
            inputs,
            &self.opts,
            pool,
            &mut self.arena,
            Vec::new(),
        )
    }

    /// [`Session::run`], putting the outputs in `outputs` and reusing the allocations of the
    /// tensors it holds (typically the previous call's outputs) for outputs of the same dtype
    /// and element count. A run writes its outputs into memory it has not touched before unless
    /// it is given some: for large outputs the page faults of fresh memory can cost more than
    /// computing them. `outputs` is empty if the run fails.
    ///
    /// ```
    /// # use mlc_ir::{DType, Dim, Graph, Module, Op, Origin, TensorType, Value, Function, BinaryOp};
    /// # use mlc_runtime::{Model, Tensor};
    /// # let mut g = Graph::new();
    /// # let x = g.add_input("x", TensorType::new(DType::F32, vec![Dim::sym("N")]));
    /// # let y = g.add(Op::Binary(BinaryOp::Mul), &[Value::of(x), Value::of(x)], Origin::default())?;
    /// # g.outputs.push(("y".into(), Value::of(y)));
    /// # let module = Module { name: "square".into(), params: vec![], functions: vec![Function { name: "forward".into(), graph: g }] };
    /// let model = Model::from_module(module)?;
    /// let mut session = model.session()?;
    /// let mut out = Vec::new();
    /// for step in 0..3 {
    ///     let x = Tensor::from_f32(&[2], vec![step as f32, 1.0]);
    ///     session.run_into("forward", &[("x".into(), x)], &mut out)?;
    ///     assert_eq!(out[0].1.as_f32(), Some(&[(step * step) as f32, 1.0][..]));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_into(
        &mut self,
        entry: &str,
        inputs: &[(String, Tensor)],
        outputs: &mut Vec<(String, Tensor)>,
    ) -> Result<(), RuntimeError> {
        let spare = outputs.drain(..).map(|(_, t)| t.into_data()).collect();
        let threads = self.threads;
        let pool = self.pool.get_or_insert_with(|| ThreadPool::new(threads));
        *outputs = self
            .program
            .run(entry, &self.weights, inputs, &self.opts, pool, &mut self.arena, spare)?;
        Ok(())
    }

    /// The bytes of the session's arena (0 before the first run).
    pub fn arena_bytes(&self) -> usize {
        self.arena.capacity()
    }

    /// The number of threads a run may use, the calling thread included (at least 1; the
    /// default is one per available core).
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.clamp(1, mlc_kernels::threadpool::MAX_THREADS);
        if let Some(pool) = &self.pool {
            pool.set_num_threads(self.threads);
        }
    }

    /// The thread setting.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The limits of a run (see [`RunOptions`]).
    pub fn set_options(&mut self, opts: RunOptions) {
        self.opts = opts;
    }
}
