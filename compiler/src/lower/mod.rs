//! Lowering: from the checked AST of a program to a Graph IR [`Module`].
//!
//! The model's block instances are built first (hyperparameters evaluated, parameters named
//! by their dotted paths, shared parameters resolved). Then each entry point is lowered by
//! evaluating its body: static values (hyperparameters, dims, lists) are computed here, every
//! tensor operation becomes a graph node whose types are inferred on the spot, so a shape error
//! points at the expression that caused it. Functions and methods are inlined; static `for`
//! loops are unrolled; `loop` statements become `Op::Loop` nodes with a body graph.

mod builtins;
mod expr;
mod instance;
mod stmt;
mod value;

use std::collections::{BTreeMap, HashMap};

use mlc_dsl::ast::{self, Item};
use mlc_dsl::loader::{ItemRef, Program};
use mlc_dsl::{Diagnostic, FileId, Span};
use mlc_ir::{DType, Graph, Literal, Module, Op, Origin, TensorType, Value};

pub use instance::Instance;
pub use value::{ArgVal, InstId, Scalar, TVal, Val};

/// A diagnostic-or-value result.
pub type R<T> = Result<T, Diagnostic>;

/// Options of a lowering: hyperparameter overrides of the model (`--set hidden=256`).
#[derive(Clone, Debug, Default)]
pub struct LowerOptions {
    pub overrides: Vec<(String, String)>,
    /// Lower only these entries (all when empty).
    pub entries: Vec<String>,
}

/// The graph being built for a function body (level 0) or a loop body (level > 0).
struct Frame {
    graph: Graph,
    /// Outer values captured by this loop body, in the order of the body's capture inputs.
    captures: Vec<Value>,
    capture_map: HashMap<Value, Value>,
    params: HashMap<String, Value>,
}

/// The variables visible in a function activation.
#[derive(Clone)]
struct Env {
    vars: HashMap<String, Val>,
    /// The block instance whose method is running (members resolve through it).
    inst: Option<InstId>,
    /// The file whose items are in scope.
    file: FileId,
    /// The binding name used as the origin of nodes made while evaluating it.
    binding: String,
    /// Index into `Lowerer::loops` of the loop whose body is running, if any.
    in_loop: Option<usize>,
}

/// Loop state while lowering a loop body: the `next` values and emits seen so far.
struct LoopCtx {
    carried: Vec<String>,
    next: HashMap<String, (TVal, Span)>,
    emits: Vec<(String, TVal, Span)>,
}

/// The lowering of one program.
pub struct Lowerer<'p> {
    prog: &'p Program,
    insts: Vec<Instance>,
    frames: Vec<Frame>,
    loops: Vec<LoopCtx>,
    depth: usize,
    /// Names bound inside loop bodies, with the loop's span: a hint when one is used after it.
    loop_locals: HashMap<String, Span>,
}

const MAX_CALL_DEPTH: usize = 200;

/// Lowers the program's model to a module. All diagnostics found are returned.
pub fn lower_program(prog: &Program, opts: &LowerOptions) -> Result<Module, Vec<Diagnostic>> {
    let mut l = Lowerer {
        prog,
        insts: Vec::new(),
        frames: Vec::new(),
        loops: Vec::new(),
        depth: 0,
        loop_locals: HashMap::new(),
    };
    let Some(model) = l.find_model()? else {
        return Ok(Module::default());
    };
    let root = l.instantiate_model(model, &opts.overrides).map_err(|d| vec![d])?;
    let mut module = Module {
        name: l.block_def(model).name.name.clone(),
        params: l.collect_params(),
        functions: vec![],
    };
    let mut diags = Vec::new();
    let def = l.block_def(model);
    for m in &def.members {
        if let ast::Member::Entry(f) = m {
            if !opts.entries.is_empty() && !opts.entries.contains(&f.name.name) {
                continue;
            }
            match l.lower_entry(root, model.file, f) {
                Ok(func) => module.functions.push(func),
                Err(d) => diags.push(d),
            }
        }
    }
    if !opts.entries.is_empty() {
        for e in &opts.entries {
            if module.function(e).is_none() && !diags.is_empty() {
                continue;
            }
            if module.function(e).is_none() {
                let names: Vec<String> = def
                    .members
                    .iter()
                    .filter_map(|m| {
                        if let ast::Member::Entry(f) = m {
                            Some(format!("`{}`", f.name.name))
                        } else {
                            None
                        }
                    })
                    .collect();
                diags.push(
                    Diagnostic::new(def.name.span, format!("model `{}` has no entry `{e}`", def.name.name))
                        .note(format!("expected one of: {}", names.join(", "))),
                );
            }
        }
    }
    // An error in a function that several entries call is reported once.
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert((d.span, d.message.clone())));
    if diags.is_empty() { Ok(module) } else { Err(diags) }
}

impl<'p> Lowerer<'p> {
    fn file_ast(&self, file: FileId) -> &'p ast::File {
        &self.prog.files.iter().find(|(f, _)| *f == file).expect("loaded file").1
    }

    fn item(&self, r: ItemRef) -> &'p Item {
        &self.file_ast(r.file).items[r.index]
    }

    fn block_def(&self, r: ItemRef) -> &'p ast::BlockDef {
        match self.item(r) {
            Item::Block(b) => b,
            _ => unreachable!("ItemRef to a block"),
        }
    }

    /// The root file's model, if any; two models in one file are an error.
    fn find_model(&self) -> Result<Option<ItemRef>, Vec<Diagnostic>> {
        let root = self.prog.root;
        let models: Vec<ItemRef> = self
            .file_ast(root)
            .items
            .iter()
            .enumerate()
            .filter(|(_, it)| matches!(it, Item::Block(b) if b.is_model))
            .map(|(index, _)| ItemRef { file: root, index })
            .collect();
        if models.len() > 1 {
            let second = self.block_def(models[1]);
            return Err(vec![
                Diagnostic::new(
                    second.name.span,
                    format!("a second model `{}` in one file", second.name.name),
                )
                .note(format!(
                    "expected one model per file; the first is `{}`",
                    self.block_def(models[0]).name.name
                )),
            ]);
        }
        Ok(models.first().copied())
    }

    /// `file:line:col` of a span.
    fn loc(&self, span: Span) -> String {
        self.prog.sources.location(span)
    }

    // ---- graph building -------------------------------------------------------------------

    fn level(&self) -> usize {
        self.frames.len() - 1
    }

    fn graph(&mut self) -> &mut Graph {
        &mut self.frames.last_mut().expect("a frame").graph
    }

    /// The value of `t` in the current frame, capturing it into loop bodies as needed.
    fn get(&mut self, t: TVal) -> Value {
        let cur = self.level();
        self.get_at(t, cur)
    }

    fn get_at(&mut self, t: TVal, level: usize) -> Value {
        if t.level == level {
            return t.v;
        }
        assert!(t.level < level, "a value of an inner loop body escaped");
        let outer = self.get_at(t, level - 1);
        if let Some(v) = self.frames[level].capture_map.get(&outer) {
            return *v;
        }
        let ty = self.frames[level - 1].graph.ty(outer).clone();
        let frame = &mut self.frames[level];
        let name = format!("capture{}", frame.captures.len());
        let id = frame.graph.add_input(&name, ty);
        frame.captures.push(outer);
        frame.capture_map.insert(outer, Value::of(id));
        Value::of(id)
    }

    /// The type of a tensor value.
    fn ty(&self, t: TVal) -> &TensorType {
        self.frames[t.level].graph.ty(t.v)
    }

    /// Adds a node to the current graph; a type error becomes a diagnostic at `span`.
    fn node(&mut self, env: &Env, op: Op, operands: &[TVal], span: Span) -> R<Vec<TVal>> {
        if self.frames.is_empty() {
            return Err(Diagnostic::new(
                span,
                "tensor operations cannot appear here: block members are evaluated at compile time",
            ));
        }
        let vals: Vec<Value> = operands.iter().map(|t| self.get(*t)).collect();
        let origin = Origin {
            name: env.binding.clone(),
            loc: self.loc(span),
        };
        let level = self.level();
        let id = self.graph().add(op, &vals, origin).map_err(|e| {
            if e.message.contains("dtypes differ") {
                Diagnostic::new(span, format!("type error in {e}"))
                    .note("expected operands of one dtype: convert with `cast(x, f32)`")
            } else if [
                "dtype",
                "not defined for",
                "must be bool",
                "bool values",
                "integer scalar",
            ]
            .iter()
            .any(|k| e.message.contains(k))
            {
                Diagnostic::new(span, format!("type error in {e}"))
            } else {
                Diagnostic::new(span, format!("shape error in {e}"))
            }
        })?;
        let n = self.frames[level].graph.node(id).outputs.len();
        Ok((0..n)
            .map(|i| TVal {
                level,
                v: Value {
                    node: id,
                    index: i as u32,
                },
            })
            .collect())
    }

    /// Adds a single-result node.
    fn node1(&mut self, env: &Env, op: Op, operands: &[TVal], span: Span) -> R<TVal> {
        Ok(self.node(env, op, operands, span)?[0])
    }

    /// A scalar constant of the given dtype from a static number. Half-precision constants
    /// are made in f32 and cast, so their rounding is the cast's; an integer that does not fit
    /// the dtype is an error.
    fn constant(&mut self, env: &Env, dtype: DType, v: Scalar, span: Span) -> R<TVal> {
        let lit = match (dtype, v) {
            (DType::Bool, Scalar::Bool(b)) => Literal::bool(b),
            (DType::Bool, Scalar::Int(i)) => Literal::bool(i != 0),
            (DType::F32, Scalar::Int(i)) => Literal::float(dtype, i as f32 as f64),
            (DType::F32, Scalar::Float(f)) => Literal::float(dtype, f as f32 as f64),
            (DType::F16 | DType::BF16, _) => {
                let c = self.constant(env, DType::F32, v, span)?;
                return self.node1(env, Op::Cast(dtype), &[c], span);
            }
            (DType::I64, Scalar::Int(i)) => Literal::int(dtype, i),
            (DType::I32, Scalar::Int(i)) => match i32::try_from(i) {
                Ok(_) => Literal::int(dtype, i),
                Err(_) => return Err(Diagnostic::new(span, format!("the integer {i} does not fit in i32"))),
            },
            (d, Scalar::Float(f)) => {
                return Err(
                    Diagnostic::new(span, format!("cannot use the float {f} as a {d} value"))
                        .note("expected an explicit `cast`"),
                );
            }
            (d, Scalar::Bool(b)) => {
                return Err(Diagnostic::new(span, format!("cannot use the bool {b} as a {d} value"))
                    .note("expected `where(c, 1, 0)` or `cast`"));
            }
        };
        self.node1(env, Op::Const(lit), &[], span)
    }

    /// The node for a parameter, made once per graph.
    fn param_node(&mut self, env: &Env, name: &str, ty: TensorType, span: Span) -> TVal {
        let level = self.level();
        if let Some(v) = self.frames[level].params.get(name) {
            return TVal { level, v: *v };
        }
        let origin = Origin {
            name: name.to_string(),
            loc: self.loc(span),
        };
        let _ = env;
        let id = self
            .graph()
            .add_typed(Op::Param { name: name.to_string() }, &[], vec![ty], origin);
        self.frames[level].params.insert(name.to_string(), Value::of(id));
        TVal {
            level,
            v: Value::of(id),
        }
    }

    fn collect_params(&self) -> Vec<mlc_ir::ParamDecl> {
        let mut out: BTreeMap<String, mlc_ir::ParamDecl> = BTreeMap::new();
        for inst in &self.insts {
            for p in inst.params.values().flatten() {
                out.entry(p.name.clone()).or_insert_with(|| p.clone());
            }
        }
        out.into_values().collect()
    }
}
