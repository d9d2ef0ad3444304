//! The generator of random well-typed Graph IR modules.
//!
//! Each module has one function, [`ENTRY`], built node by node with `Graph::add`: an op is
//! chosen at random with random operands from the values built so far, and a choice that type
//! inference rejects is simply dropped (another is tried).
//!
//! Two facts are tracked per value so that the two backends can be compared strictly:
//!
//! - `mag`, an upper bound on the magnitude of its elements. Float values are kept tame
//!   (`|x| <= F_LIMIT`, rescaled by an exact power of two or `tanh` when they grow), functions
//!   with singularities only see safe arguments (`exp(tanh x)`, `log(|x| + 1)`, `x / (|y| + 1)`),
//!   and integers stay far from overflow (`rem` when they grow, division by `max(|y|, 1)`).
//! - `exact`: both backends must compute it bit for bit. Inputs, weights, constants, iota and
//!   RNG are exact; the correctly rounded IEEE operations (add, sub, mul, div, sqrt, min, max,
//!   floor, ...), data movement, gathers and max/min reductions keep exactness; transcendental
//!   functions, sums, products, cumsums and matrix products lose it (the backends may round or
//!   accumulate differently). Discontinuous functions (comparisons, floor/ceil/round/sign, rem,
//!   casts to integers, bool or half precision, argmax, top-k) are only applied to exact
//!   values, so that a difference in the last bit never flips a result. Integers and bools are
//!   therefore always exact.

use std::collections::HashMap;

use mlc_ir::{
    ArgOp, BinaryOp, Bindings, DType, Dim, Function, Graph, Init, Literal, LiteralData, LoopOp, Module, Op, Origin,
    ParamDecl, ReduceOp, Shape, TensorType, UnaryOp, Value,
};

use super::rng::Rng;

/// The name of the generated entry point.
pub const ENTRY: &str = "main";
/// Static dims, and the values symbolic dims are bound to.
const DIMS: [i64; 8] = [1, 2, 3, 4, 5, 7, 8, 16];
/// The names of symbolic dims.
const SYMS: [&str; 2] = ["N", "M"];
/// The largest value (evaluated) a generated node may have, in elements; in large cases
/// (enough work for the CPU backend to split kernels over threads) `LARGE_NUMEL`.
const MAX_NUMEL: i64 = 1024;
const LARGE_NUMEL: i64 = 1 << 16;
/// The largest input, in elements (in large cases `LARGE_INPUT_NUMEL`).
const MAX_INPUT_NUMEL: i64 = 256;
const LARGE_INPUT_NUMEL: i64 = 1 << 14;
/// The share of large cases.
const LARGE_SHARE: f64 = 0.15;
/// Float values larger than this (bound) are rescaled.
const F_LIMIT: f64 = 8.0;
/// Integer values larger than this (bound) are reduced with `rem`.
const I_LIMIT: f64 = 100_000.0;

/// A generated test case: the module, the dims its inputs bind, the ranges of its integer
/// inputs (for `init_inputs_with_ranges`), and the seed of everything (also of weights and
/// inputs).
#[derive(Clone, Debug)]
pub struct Case {
    pub seed: u64,
    pub module: Module,
    pub bindings: Bindings,
    pub ranges: HashMap<String, i64>,
}

/// A value with what the generator knows about it.
#[derive(Clone, Debug)]
struct Info {
    v: Value,
    ty: TensorType,
    /// Upper bound of `|x|` over the elements (1 for bools).
    mag: f64,
    /// Computed bit-identically by every backend.
    exact: bool,
}

impl Info {
    fn dtype(&self) -> DType {
        self.ty.dtype
    }
    fn rank(&self) -> usize {
        self.ty.rank()
    }
    fn is_f32(&self) -> bool {
        self.ty.dtype == DType::F32
    }
    fn is_int(&self) -> bool {
        self.ty.dtype.is_int()
    }
    fn is_bool(&self) -> bool {
        self.ty.dtype == DType::Bool
    }
}

/// State shared by the function and its loop bodies.
#[derive(Default)]
struct Shared {
    rng: Rng,
    params: Vec<ParamDecl>,
    bindings: Bindings,
    /// Symbols bound by some input.
    syms: Vec<String>,
    /// The largest value, in elements.
    max_numel: i64,
}

impl Shared {
    fn eval(&self, d: &Dim) -> i64 {
        d.eval(&self.bindings).expect("generated dims only use bound symbols")
    }

    fn numel(&self, s: &[Dim]) -> i64 {
        s.iter().map(|d| self.eval(d)).product()
    }

    fn static_dim(&mut self) -> i64 {
        if self.max_numel > MAX_NUMEL && self.rng.chance(0.5) {
            *self.rng.pick(&[8, 16])
        } else {
            *self.rng.pick(&DIMS)
        }
    }

    /// A dim: mostly static, sometimes a bound symbol.
    fn dim(&mut self) -> Dim {
        if !self.syms.is_empty() && self.rng.chance(0.2) {
            let s = self.rng.pick(&self.syms).clone();
            Dim::sym(&s)
        } else {
            Dim::c(self.static_dim())
        }
    }

    /// A random shape of the given rank with at most `limit` elements.
    fn shape(&mut self, rank: usize, limit: i64) -> Shape {
        for _ in 0..20 {
            let s: Shape = (0..rank).map(|_| self.dim()).collect();
            if self.numel(&s) <= limit {
                return s;
            }
        }
        (0..rank).map(|_| Dim::c(*self.rng.pick(&[1, 2, 3]))).collect()
    }

    fn rank(&mut self) -> usize {
        [0, 1, 1, 2, 2, 2, 3, 3, 4][self.rng.below(9)]
    }

    /// Declares a new f32 parameter; returns its name and the bound of its values.
    fn param(&mut self, shape: Vec<u64>) -> (String, f64) {
        let name = format!("p{:02}", self.params.len());
        let (init, mag) = match self.rng.below(4) {
            0 | 1 => {
                let std = *self.rng.pick(&[0.25, 0.5, 1.0]);
                (Init::Normal(std), 6.0 * std)
            }
            2 => {
                let b = *self.rng.pick(&[0.5, 1.0, 2.0]);
                (Init::Uniform(b), b)
            }
            _ => {
                let v = *self.rng.pick(&[0.0, 1.0, -0.5, 0.125]);
                (Init::Fill(v), f64::abs(v))
            }
        };
        self.params.push(ParamDecl {
            name: name.clone(),
            dtype: DType::F32,
            shape,
            init,
        });
        (name, mag)
    }
}

fn unary_rule(op: UnaryOp, x: &Info) -> (f64, bool) {
    let (m, e) = (x.mag, x.exact);
    if !x.is_f32() {
        return match op {
            UnaryOp::Sign | UnaryOp::Not => (1.0, e),
            _ => (m, e),
        };
    }
    match op {
        UnaryOp::Neg | UnaryOp::Abs => (m, e),
        UnaryOp::Exp => (m.exp(), false),
        UnaryOp::Log => (m.max(1.0).ln() + 1.0, false),
        // Correctly rounded in IEEE arithmetic, like `1 / x`.
        UnaryOp::Sqrt => (m.sqrt() + 1.0, e),
        UnaryOp::Recip => (1.0, e),
        UnaryOp::Rsqrt => (1.0, false),
        UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Erf | UnaryOp::Sin | UnaryOp::Cos => (1.0, false),
        UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => (m + 1.0, e),
        UnaryOp::Sign | UnaryOp::Not => (1.0, e),
    }
}

fn binary_rule(op: BinaryOp, a: &Info, b: &Info) -> (f64, bool) {
    let e = a.exact && b.exact;
    if op.is_comparison() || op.is_logical() {
        return (1.0, true);
    }
    match op {
        BinaryOp::Add | BinaryOp::Sub => (a.mag + b.mag, e),
        BinaryOp::Mul => (a.mag * b.mag, e),
        // Divisors are built to be at least 1 in magnitude.
        BinaryOp::Div => (a.mag, e),
        BinaryOp::Rem => (b.mag, e),
        BinaryOp::Pow if a.is_f32() => (a.mag.max(1.0).powf(b.mag.max(1.0)), false),
        BinaryOp::Pow => (a.mag.max(1.0).powi(2), e),
        _ => (a.mag.max(b.mag), e),
    }
}

/// True if the comma-separated tags of `MLC_RANDOM_AVOID` include `tag`: a construct left out
/// to look past a known bug. Tags: `empty-reduce` (reductions over no axes), `special`
/// (NaN/inf/-0 values), `raw-cpu` (the CPU backend runs only optimised modules).
pub fn avoid(tag: &str) -> bool {
    thread_local! {
        static AVOID: Vec<String> = std::env::var("MLC_RANDOM_AVOID")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
    }
    AVOID.with(|a| a.iter().any(|t| t == tag))
}

fn avoided(op: &Op) -> bool {
    match op {
        Op::Reduce { axes, .. } if axes.is_empty() => avoid("empty-reduce"),
        _ => false,
    }
}

/// Builds one graph (the function, or a loop body).
struct Builder {
    sh: Shared,
    g: Graph,
    pool: Vec<Info>,
    /// f32 values that may hold NaN, ±inf or -0: kept apart from `pool` (whose bounds they
    /// would break) and used by [`Builder::p_special_use`] only.
    specials: Vec<Info>,
    depth: usize,
}

type Step = fn(&mut Builder) -> Option<()>;

/// The productions and their weights.
const STEPS: [(Step, u32, &str); 32] = [
    (Builder::p_unary, 12, "unary"),
    (Builder::p_binary, 16, "binary"),
    (Builder::p_compare, 5, "compare"),
    (Builder::p_select, 4, "select"),
    (Builder::p_cast, 4, "cast"),
    (Builder::p_half, 1, "half"),
    (Builder::p_reduce, 7, "reduce"),
    (Builder::p_argreduce, 3, "argreduce"),
    (Builder::p_reshape, 5, "reshape"),
    (Builder::p_permute, 4, "permute"),
    (Builder::p_expand, 3, "expand"),
    (Builder::p_slice, 4, "slice"),
    (Builder::p_concat, 3, "concat"),
    (Builder::p_pad, 3, "pad"),
    (Builder::p_matmul, 6, "matmul"),
    (Builder::p_gather, 3, "gather"),
    (Builder::p_take, 3, "take"),
    (Builder::p_scatter, 2, "scatter"),
    (Builder::p_dynamic_slice, 2, "dynamic_slice"),
    (Builder::p_dynamic_update_slice, 1, "dynamic_update_slice"),
    (Builder::p_cumsum, 2, "cumsum"),
    (Builder::p_topk, 2, "topk"),
    (Builder::p_rng, 2, "rng"),
    (Builder::p_iota, 2, "iota"),
    (Builder::p_dim, 1, "dim"),
    (Builder::p_const, 2, "const"),
    (Builder::p_loop, 3, "loop"),
    (Builder::p_norm, 3, "norm"),
    (Builder::p_rnn, 1, "rnn"),
    (Builder::p_special, 1, "special"),
    (Builder::p_special_use, 4, "special_use"),
    (Builder::p_wrap, 2, "wrap"),
];

impl Builder {
    fn new(sh: Shared, depth: usize) -> Builder {
        Builder {
            sh,
            g: Graph::new(),
            pool: Vec::new(),
            specials: Vec::new(),
            depth,
        }
    }

    fn rng(&mut self) -> &mut Rng {
        &mut self.sh.rng
    }

    fn chance(&mut self, p: f64) -> bool {
        self.sh.rng.chance(p)
    }

    /// A bound symbol as a dim.
    fn sym(&mut self) -> Option<Dim> {
        if self.sh.syms.is_empty() {
            return None;
        }
        let n = self.sh.syms.len();
        let k = self.rng().below(n);
        Some(Dim::sym(&self.sh.syms[k]))
    }

    // ---- nodes ----

    /// Adds a node (index 0 of its results) if it type-checks and is not too large.
    fn mk(&mut self, op: Op, operands: &[&Info], mag: f64, exact: bool) -> Option<Info> {
        if avoided(&op) {
            return None;
        }
        let vals: Vec<Value> = operands.iter().map(|i| i.v).collect();
        let types: Vec<&TensorType> = vals.iter().map(|v| self.g.ty(*v)).collect();
        let outs = mlc_ir::infer(&op, &types).ok()?;
        if outs.iter().any(|t| self.sh.numel(&t.shape) > self.sh.max_numel) {
            return None;
        }
        let id = self.g.add(op, &vals, Origin::default()).ok()?;
        Some(Info {
            v: Value::of(id),
            ty: outs[0].clone(),
            mag,
            exact,
        })
    }

    fn push(&mut self, i: Info) -> Option<()> {
        self.pool.push(i);
        Some(())
    }

    /// A scalar constant of a dtype.
    fn scalar(&mut self, dtype: DType, v: f64) -> Info {
        let lit = match dtype {
            DType::Bool => Literal::bool(v != 0.0),
            d if d.is_int() => Literal::int(d, v as i64),
            d => Literal::float(d, v),
        };
        self.mk(Op::Const(lit), &[], v.abs().max(f64::from(dtype == DType::Bool)), true)
            .expect("a scalar constant")
    }

    /// A random scalar value fit for a dtype.
    fn random_scalar(&mut self, dtype: DType) -> Info {
        let v = match dtype {
            DType::Bool => self.rng().below(2) as f64,
            d if d.is_int() => self.rng().range(-4, 6) as f64,
            _ => {
                if self.chance(0.8) {
                    self.rng().range(-24, 24) as f64 / 8.0
                } else {
                    *self.rng().pick(&[0.1, -0.3, 1.7, 0.01])
                }
            }
        };
        self.scalar(dtype, v)
    }

    fn un(&mut self, op: UnaryOp, x: &Info) -> Option<Info> {
        let (m, e) = unary_rule(op, x);
        self.mk(Op::Unary(op), &[x], m, e)
    }

    fn bin(&mut self, op: BinaryOp, a: &Info, b: &Info) -> Option<Info> {
        let (m, e) = binary_rule(op, a, b);
        self.mk(Op::Binary(op), &[a, b], m, e)
    }

    fn bin_scalar(&mut self, op: BinaryOp, a: &Info, v: f64) -> Option<Info> {
        let c = self.scalar(a.dtype(), v);
        self.bin(op, a, &c)
    }

    /// `|x| + 1` (floats) or `max(|x|, 1)` (integers): a safe divisor.
    fn positive(&mut self, x: &Info) -> Option<Info> {
        let a = self.un(UnaryOp::Abs, x)?;
        if x.is_f32() {
            self.bin_scalar(BinaryOp::Add, &a, 1.0)
        } else {
            let mut m = self.bin_scalar(BinaryOp::Max, &a, 1.0)?;
            m.mag = x.mag.max(1.0);
            Some(m)
        }
    }

    /// `min(max(x, -b), b)`: keeps exactness.
    fn clamp(&mut self, x: &Info, b: f64) -> Option<Info> {
        let lo = self.bin_scalar(BinaryOp::Max, x, -b)?;
        let mut hi = self.bin_scalar(BinaryOp::Min, &lo, b)?;
        hi.mag = b;
        Some(hi)
    }

    /// Brings a value back under the limits: floats by an exact power of two (or `tanh`),
    /// integers by `rem`.
    fn tame(&mut self, x: Info) -> Option<Info> {
        if x.is_f32() && x.mag > F_LIMIT {
            if self.chance(0.75) {
                let k = (x.mag / 4.0).log2().ceil() as i32;
                let mut y = self.bin_scalar(BinaryOp::Mul, &x, 2f64.powi(-k))?;
                y.mag = x.mag * 2f64.powi(-k);
                Some(y)
            } else {
                self.un(UnaryOp::Tanh, &x)
            }
        } else if x.is_int() && x.mag > I_LIMIT {
            let k = *self.rng().pick(&[97.0, 1009.0, 7.0]);
            self.bin_scalar(BinaryOp::Rem, &x, k)
        } else {
            Some(x)
        }
    }

    fn cast(&mut self, x: &Info, to: DType) -> Option<Info> {
        if x.dtype() == to {
            return Some(x.clone());
        }
        let mag = if to == DType::Bool || x.is_bool() { 1.0 } else { x.mag };
        self.mk(Op::Cast(to), &[x], mag, x.exact)
    }

    /// A value from the pool that satisfies `f`, biased towards recent ones.
    fn pick(&mut self, f: impl Fn(&Info) -> bool) -> Option<Info> {
        let c: Vec<usize> = (0..self.pool.len()).filter(|&i| f(&self.pool[i])).collect();
        if c.is_empty() {
            return None;
        }
        let i = if self.chance(0.5) {
            c[c.len() - 1 - self.rng().below(c.len().min(3))]
        } else {
            *self.rng().pick(&c)
        };
        Some(self.pool[i].clone())
    }

    /// An operand of `x`'s dtype that broadcasts with it.
    fn partner(&mut self, x: &Info) -> Option<Info> {
        let d = x.dtype();
        match self.rng().below(7) {
            0 => Some(x.clone()),
            1 => Some(self.random_scalar(d)),
            2 | 3 => {
                let xs = x.ty.shape.clone();
                let lim = self.sh.max_numel;
                let sh = &self.sh;
                let ok = |i: &Info| {
                    i.dtype() == d && mlc_ir::broadcast_shapes(&[&xs, &i.ty.shape]).is_some_and(|s| sh.numel(&s) <= lim)
                };
                let c: Vec<Info> = self.pool.iter().filter(|i| ok(i)).cloned().collect();
                if c.is_empty() {
                    return Some(x.clone());
                }
                Some(self.rng().pick(&c).clone())
            }
            4 if d == DType::F32 => {
                // A weight broadcasting against a suffix of x.
                let r = x.rank();
                let keep = self.rng().below(r + 1);
                let mut shape = Vec::new();
                for dim in &x.ty.shape[r - keep..] {
                    let s = match dim.as_const() {
                        Some(c) if self.chance(0.8) => c as u64,
                        _ => 1,
                    };
                    shape.push(s);
                }
                self.new_param(shape)
            }
            5 if x.rank() > 0 => {
                // A reduction of x itself, kept broadcastable (x - max(x), x / sum(|x|), ...).
                let axes = self.random_axes(x.rank());
                let op = match d {
                    DType::Bool => ReduceOp::Any,
                    _ => *self.rng().pick(&[ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum]),
                };
                let count: i64 = axes.iter().map(|&a| self.sh.eval(&x.ty.shape[a])).product();
                let (mag, exact) = match op {
                    ReduceOp::Sum => (x.mag * count as f64, x.exact && !x.is_f32()),
                    _ => (x.mag, x.exact),
                };
                let r = self.mk(
                    Op::Reduce {
                        op,
                        axes,
                        keepdim: true,
                    },
                    &[x],
                    mag,
                    exact,
                )?;
                self.tame(r)
            }
            _ => {
                // A small constant tensor along the last axis.
                let n = x.ty.shape.last().and_then(|d| d.as_const()).filter(|&n| n <= 16)?;
                Some(self.const_tensor(d, vec![n as u64]))
            }
        }
    }

    /// A `param` node (the declaration already exists).
    fn param_node(&mut self, name: &str, mag: f64) -> Option<Info> {
        let decl = self.sh.params.iter().find(|p| p.name == name)?;
        let ty = TensorType::new(decl.dtype, decl.shape.iter().map(|&d| Dim::c(d as i64)).collect());
        let id = self.g.add_typed(
            Op::Param { name: name.to_string() },
            &[],
            vec![ty.clone()],
            Origin::default(),
        );
        Some(Info {
            v: Value::of(id),
            ty,
            mag,
            exact: true,
        })
    }

    /// A new parameter of a static shape and its node.
    fn new_param(&mut self, shape: Vec<u64>) -> Option<Info> {
        let (name, mag) = self.sh.param(shape);
        self.param_node(&name, mag)
    }

    fn const_tensor(&mut self, d: DType, shape: Vec<u64>) -> Info {
        let n: u64 = shape.iter().product();
        let data = match d {
            DType::Bool => LiteralData::Bool((0..n).map(|_| self.chance(0.5)).collect()),
            d if d.is_int() => LiteralData::Int((0..n).map(|_| self.rng().range(-5, 9)).collect()),
            _ => LiteralData::Float((0..n).map(|_| self.rng().range(-16, 16) as f64 / 4.0).collect()),
        };
        let mag = if d.is_int() { 9.0 } else { 4.0 };
        self.mk(Op::Const(Literal { dtype: d, shape, data }), &[], mag, true)
            .expect("a constant tensor")
    }

    /// A non-empty (rarely empty) set of distinct axes, sorted.
    fn random_axes(&mut self, rank: usize) -> Vec<usize> {
        if rank == 0 || self.chance(0.03) {
            return vec![];
        }
        let n = 1 + self.rng().below(rank.min(3));
        let mut axes: Vec<usize> = self.rng().permutation(rank)[..n].to_vec();
        if self.chance(0.8) {
            axes.sort();
        }
        axes
    }

    /// An `i64[]` scalar: a constant, a dim, a reduction of an integer value.
    fn int_scalar(&mut self, lo: i64, hi: i64) -> Option<Info> {
        match self.rng().below(4) {
            0 | 1 => {
                let v = self.rng().range(lo, hi);
                Some(self.scalar(DType::I64, v as f64))
            }
            2 if !self.sh.syms.is_empty() => {
                let s = self.sym()?;
                self.mk(Op::DimSize(s), &[], 16.0, true)
            }
            _ => {
                let x = self.pick(|i| i.is_int() && i.rank() <= 2)?;
                let axes: Vec<usize> = (0..x.rank()).collect();
                let count = self.sh.numel(&x.ty.shape) as f64;
                let op = *self.rng().pick(&[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min]);
                let r = self.mk(
                    Op::Reduce {
                        op,
                        axes,
                        keepdim: false,
                    },
                    &[&x],
                    x.mag * count,
                    true,
                )?;
                let r = self.tame(r)?;
                self.cast(&r, DType::I64)
            }
        }
    }

    /// Integer indices of the given shape with values in `[0, n)`.
    fn indices(&mut self, shape: &Shape, n: &Dim) -> Option<Info> {
        if self.sh.eval(n) < 1 {
            return None;
        }
        let base = match self.rng().below(3) {
            0 if !shape.is_empty() => {
                let axis = self.rng().below(shape.len());
                let m = self.sh.eval(&shape[axis]) as f64;
                self.mk(
                    Op::Iota {
                        shape: shape.clone(),
                        axis,
                        dtype: DType::I64,
                    },
                    &[],
                    m,
                    true,
                )?
            }
            1 => {
                let sh = Shared {
                    bindings: self.sh.bindings.clone(),
                    ..Shared::default()
                };
                let shape_c = shape.clone();
                let p = self.pick(|i| {
                    i.is_int()
                        && mlc_ir::broadcast_shapes(&[&shape_c, &i.ty.shape])
                            .is_some_and(|s| sh.numel(&s) == sh.numel(&shape_c))
                })?;
                self.cast(&p, DType::I64)?
            }
            _ => {
                let u = self.rng_value(shape.clone())?;
                let nf = self.sh.eval(n).max(1) as f64;
                let s = self.bin_scalar(BinaryOp::Mul, &u, nf)?;
                let f = self.un(UnaryOp::Floor, &s)?;
                self.cast(&f, DType::I64)?
            }
        };
        let k = self.rng().range(0, 5) as f64;
        let plus = self.bin_scalar(BinaryOp::Add, &base, k)?;
        let a = self.un(UnaryOp::Abs, &plus)?;
        let nv = if n.is_const() && self.chance(0.6) {
            self.scalar(DType::I64, n.as_const().unwrap_or(1) as f64)
        } else {
            self.mk(Op::DimSize(n.clone()), &[], self.sh.eval(n) as f64, true)?
        };
        let mut idx = self.bin(BinaryOp::Rem, &a, &nv)?;
        if idx.ty.shape != *shape {
            idx = self.mk(Op::Expand(shape.clone()), &[&idx], idx.mag, true)?;
        }
        if self.chance(0.3) {
            idx = self.cast(&idx, DType::I32)?;
        }
        Some(idx)
    }

    fn rng_value(&mut self, shape: Shape) -> Option<Info> {
        let seed = self.int_scalar(-1000, 1000)?;
        let offset = if self.chance(0.3) {
            self.pick(|i| i.is_int() && i.rank() == 0 && i.dtype() == DType::I64)
                .unwrap_or_else(|| self.scalar(DType::I64, 3.0))
        } else {
            let v = self.rng().range(0, 1 << 20) as f64;
            self.scalar(DType::I64, v)
        };
        self.mk(Op::RngUniform { shape }, &[&seed, &offset], 1.0, true)
    }

    /// A dim no larger than `d` (for windows and top-k).
    fn dim_at_most(&mut self, d: &Dim) -> Dim {
        let n = self.sh.eval(d);
        if !d.is_const() && self.chance(0.5) {
            return d.clone();
        }
        Dim::c(self.rng().range(1, n.max(1)))
    }

    // ---- productions ----

    fn p_unary(&mut self) -> Option<()> {
        let x = self.pick(|_| true)?;
        if x.is_bool() {
            let y = self.un(UnaryOp::Not, &x)?;
            return self.push(y);
        }
        if x.is_int() {
            let op = *self.rng().pick(&[UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign]);
            let y = self.un(op, &x)?;
            return self.push(y);
        }
        if !x.is_f32() {
            return None;
        }
        let all = mlc_ir::Op::UNARY;
        let op = *self.rng().pick(&all[..16]);
        let y = match op {
            UnaryOp::Exp => {
                let t = if x.mag > 1.0 { self.un(UnaryOp::Tanh, &x)? } else { x };
                self.un(UnaryOp::Exp, &t)?
            }
            UnaryOp::Log | UnaryOp::Rsqrt | UnaryOp::Recip => {
                let p = self.positive(&x)?;
                self.un(op, &p)?
            }
            UnaryOp::Sqrt => {
                let a = if x.exact {
                    self.un(UnaryOp::Abs, &x)?
                } else {
                    self.positive(&x)?
                };
                self.un(op, &a)?
            }
            UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round | UnaryOp::Sign => {
                if !x.exact {
                    return None;
                }
                // Scaled first, so that rounding does not just return integers.
                let s = if self.chance(0.5) {
                    self.bin_scalar(BinaryOp::Mul, &x, 4.0)?
                } else {
                    x
                };
                self.un(op, &s)?
            }
            _ => self.un(op, &x)?,
        };
        let y = self.tame(y)?;
        self.push(y)
    }

    fn p_binary(&mut self) -> Option<()> {
        let x = self.pick(|_| true)?;
        let d = x.dtype();
        if d == DType::Bool {
            let y = self.partner(&x)?;
            let op = *self
                .rng()
                .pick(&[BinaryOp::And, BinaryOp::Or, BinaryOp::Xor, BinaryOp::Eq, BinaryOp::Ne]);
            let z = self.bin(op, &x, &y)?;
            return self.push(z);
        }
        if !x.is_f32() && !x.is_int() {
            return None;
        }
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Rem,
            BinaryOp::Pow,
            BinaryOp::Max,
            BinaryOp::Min,
        ];
        let op = *self.rng().pick(&ops);
        let y = self.partner(&x)?;
        let z = match op {
            BinaryOp::Div => {
                let p = self.positive(&y)?;
                let p = if x.is_int() && self.chance(0.3) {
                    self.un(UnaryOp::Neg, &p)?
                } else {
                    p
                };
                self.bin(op, &x, &p)?
            }
            BinaryOp::Rem => {
                if !(x.exact && y.exact) {
                    return None;
                }
                let p = self.positive(&y)?;
                let p = if self.chance(0.3) {
                    self.un(UnaryOp::Neg, &p)?
                } else {
                    p
                };
                self.bin(op, &x, &p)?
            }
            BinaryOp::Pow if x.is_f32() => {
                // base in [0.5, 1.5], exponent in [-2, 2] (or a constant)
                let s = self.un(UnaryOp::Sigmoid, &x)?;
                let base = self.bin_scalar(BinaryOp::Add, &s, 0.5)?;
                let e = if self.chance(0.5) {
                    let c = *self.rng().pick(&[2.0, 3.0, 0.5, -1.0, -2.0]);
                    self.scalar(DType::F32, c)
                } else {
                    let t = self.un(UnaryOp::Tanh, &y)?;
                    let mut t2 = self.bin_scalar(BinaryOp::Mul, &t, 2.0)?;
                    t2.mag = 2.0;
                    t2
                };
                let mut base = base;
                base.mag = 1.5;
                self.bin(op, &base, &e)?
            }
            BinaryOp::Pow => {
                let a = self.un(UnaryOp::Abs, &y)?;
                let mut e = self.bin_scalar(BinaryOp::Rem, &a, 3.0)?;
                e.mag = 2.0;
                let base = if x.mag > 300.0 {
                    self.bin_scalar(BinaryOp::Rem, &x, 17.0)?
                } else {
                    x
                };
                self.bin(op, &base, &e)?
            }
            _ => self.bin(op, &x, &y)?,
        };
        let z = self.tame(z)?;
        self.push(z)
    }

    fn p_compare(&mut self) -> Option<()> {
        let x = self.pick(|i| i.exact && !i.is_bool())?;
        let mut y = self.partner(&x)?;
        if !y.exact {
            y = self.random_scalar(x.dtype());
        }
        let op = *self.rng().pick(&[
            BinaryOp::Eq,
            BinaryOp::Ne,
            BinaryOp::Lt,
            BinaryOp::Le,
            BinaryOp::Gt,
            BinaryOp::Ge,
        ]);
        let z = self.bin(op, &x, &y)?;
        self.push(z)
    }

    fn p_select(&mut self) -> Option<()> {
        let c = self.pick(|i| i.is_bool())?;
        let a = self.pick(|_| true)?;
        let b = self.partner(&a)?;
        let z = self.mk(Op::Select, &[&c, &a, &b], a.mag.max(b.mag), a.exact && b.exact)?;
        self.push(z)
    }

    fn p_cast(&mut self) -> Option<()> {
        let x = self.pick(|i| i.dtype() != DType::F16 && i.dtype() != DType::BF16)?;
        let to = *self.rng().pick(&[DType::F32, DType::I32, DType::I64, DType::Bool]);
        if x.is_f32() && to != DType::F32 && !x.exact {
            return None;
        }
        let y = self.cast(&x, to)?;
        let y = self.tame(y)?;
        self.push(y)
    }

    /// A round trip through f16 or bf16 (the backends run half precision through the
    /// reference implementation).
    fn p_half(&mut self) -> Option<()> {
        let x = self.pick(|i| i.is_f32() && i.exact)?;
        let h = *self.rng().pick(&[DType::F16, DType::BF16]);
        let y = self.cast(&x, h)?;
        let y = if self.chance(0.5) {
            self.mk(Op::Binary(BinaryOp::Add), &[&y, &y], 2.0 * x.mag, true)?
        } else {
            y
        };
        let z = self.cast(&y, DType::F32)?;
        self.push(z)
    }

    fn p_reduce(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() > 0 && (i.is_f32() || i.is_int() || i.is_bool()))?;
        let axes = self.random_axes(x.rank());
        let keepdim = self.chance(0.5);
        let count: i64 = axes.iter().map(|&a| self.sh.eval(&x.ty.shape[a])).product();
        let (op, input, mag, exact) = if x.is_bool() {
            (*self.rng().pick(&[ReduceOp::Any, ReduceOp::All]), x.clone(), 1.0, true)
        } else {
            let op = *self.rng().pick(&[
                ReduceOp::Sum,
                ReduceOp::Sum,
                ReduceOp::Max,
                ReduceOp::Min,
                ReduceOp::Prod,
            ]);
            match op {
                ReduceOp::Prod if count > 8 => return None,
                ReduceOp::Prod if x.is_f32() => {
                    let s = self.un(UnaryOp::Sigmoid, &x)?;
                    let mut b = self.bin_scalar(BinaryOp::Add, &s, 0.5)?;
                    b.mag = 1.5;
                    (op, b, 1.5f64.powi(count as i32), false)
                }
                ReduceOp::Prod => {
                    let mut b = self.bin_scalar(BinaryOp::Rem, &x, 3.0)?;
                    b.mag = 2.0;
                    (op, b, 2f64.powi(count as i32), true)
                }
                ReduceOp::Sum => (op, x.clone(), x.mag * count as f64, x.exact && x.is_int()),
                _ => (op, x.clone(), x.mag, x.exact),
            }
        };
        let r = self.mk(Op::Reduce { op, axes, keepdim }, &[&input], mag, exact)?;
        let r = self.tame(r)?;
        self.push(r)
    }

    fn p_argreduce(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() > 0 && i.exact && (i.is_f32() || i.is_int()))?;
        let axis = self.rng().below(x.rank());
        let op = *self.rng().pick(&[ArgOp::ArgMax, ArgOp::ArgMin]);
        let keepdim = self.chance(0.4);
        let n = self.sh.eval(&x.ty.shape[axis]) as f64;
        let r = self.mk(Op::ArgReduce { op, axis, keepdim }, &[&x], n, true)?;
        self.push(r)
    }

    fn p_reshape(&mut self) -> Option<()> {
        let x = self.pick(|_| true)?;
        let s = x.ty.shape.clone();
        let r = s.len();
        let new: Shape = match self.rng().below(6) {
            0 if r >= 2 => {
                let i = self.rng().below(r - 1);
                let mut n = s[..i].to_vec();
                n.push(&s[i] * &s[i + 1]);
                n.extend_from_slice(&s[i + 2..]);
                n
            }
            1 if r >= 1 => {
                let i = self.rng().below(r);
                let mut n = s[..i].to_vec();
                match s[i].as_const() {
                    Some(c) if c > 1 => {
                        let divs: Vec<i64> = (1..=c).filter(|f| c % f == 0).collect();
                        let f = *self.rng().pick(&divs);
                        n.push(Dim::c(f));
                        n.push(Dim::c(c / f));
                    }
                    _ => {
                        if self.chance(0.5) {
                            n.push(Dim::c(1));
                            n.push(s[i].clone());
                        } else {
                            n.push(s[i].clone());
                            n.push(Dim::c(1));
                        }
                    }
                }
                n.extend_from_slice(&s[i + 1..]);
                n
            }
            2 => vec![mlc_ir::numel(&s)],
            3 => {
                let mut n = s.clone();
                let at = self.rng().below(r + 1);
                n.insert(at, Dim::c(1));
                n
            }
            4 => {
                let ones: Vec<usize> = (0..r).filter(|&i| s[i] == Dim::c(1)).collect();
                if ones.is_empty() {
                    return None;
                }
                let mut n = s.clone();
                n.remove(*self.rng().pick(&ones));
                n
            }
            _ => {
                let total = mlc_ir::numel(&s).as_const().filter(|&t| t > 0)?;
                let mut left = total;
                let mut n = Vec::new();
                for _ in 0..self.rng().below(3) {
                    let divs: Vec<i64> = (1..=left).filter(|f| left % f == 0).collect();
                    let f = *self.rng().pick(&divs);
                    n.push(Dim::c(f));
                    left /= f;
                }
                n.push(Dim::c(left));
                n
            }
        };
        if new.len() > 5 {
            return None;
        }
        let y = self.mk(Op::Reshape(new), &[&x], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_permute(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 2)?;
        let perm = self.rng().permutation(x.rank());
        let y = self.mk(Op::Permute(perm), &[&x], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_expand(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() <= 3)?;
        let mut shape: Shape = Vec::new();
        let lead = self.rng().below(3);
        for _ in 0..lead {
            shape.push(self.sh.dim());
        }
        for d in &x.ty.shape {
            if *d == Dim::c(1) && self.chance(0.7) {
                shape.push(self.sh.dim());
            } else {
                shape.push(d.clone());
            }
        }
        if shape == x.ty.shape || shape.len() > 5 {
            return None;
        }
        let y = self.mk(Op::Expand(shape), &[&x], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_slice(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let d = x.ty.shape[axis].clone();
        let (start, end, step) = match d.as_const() {
            Some(n) if n >= 1 => {
                let s = self.rng().range(0, n - 1);
                let e = self.rng().range(s + 1, n);
                let step = *self.rng().pick(&[1, 1, 2, 3]);
                (Dim::c(s), Dim::c(e), step)
            }
            Some(_) => return None,
            None => {
                let n = self.sh.eval(&d);
                match self.rng().below(3) {
                    0 if n > 1 => (Dim::c(1), d.clone(), 1),
                    1 => {
                        let e = self.rng().range(1, n);
                        (Dim::c(0), Dim::c(e), 1)
                    }
                    _ => (Dim::c(0), d.clone(), 1),
                }
            }
        };
        let y = self.mk(Op::Slice { axis, start, end, step }, &[&x], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_concat(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let mut parts = vec![x.clone()];
        for _ in 0..1 + self.rng().below(2) {
            let p = match self.rng().below(4) {
                0 => x.clone(),
                1 if !x.is_bool() => self.un(UnaryOp::Neg, &x)?,
                2 => {
                    let n = x.ty.shape[axis].as_const().filter(|&n| n >= 2)?;
                    let e = self.rng().range(1, n);
                    self.mk(
                        Op::Slice {
                            axis,
                            start: Dim::c(0),
                            end: Dim::c(e),
                            step: 1,
                        },
                        &[&x],
                        x.mag,
                        x.exact,
                    )?
                }
                _ => {
                    let t = x.ty.clone();
                    self.pick(|i| {
                        i.dtype() == t.dtype
                            && i.rank() == t.rank()
                            && (0..t.rank()).all(|a| a == axis || i.ty.shape[a] == t.shape[a])
                    })?
                }
            };
            parts.push(p);
        }
        let refs: Vec<&Info> = parts.iter().collect();
        let mag = parts.iter().map(|p| p.mag).fold(0.0, f64::max);
        let exact = parts.iter().all(|p| p.exact);
        let y = self.mk(Op::Concat { axis }, &refs, mag, exact)?;
        self.push(y)
    }

    fn p_pad(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let before = self.rng().below(3) as u64;
        let after = self.rng().below(3) as u64;
        let value = match x.dtype() {
            DType::Bool => self.rng().below(2) as f64,
            d if d.is_int() => *self.rng().pick(&[0.0, 1.0, -3.0]),
            _ => *self.rng().pick(&[0.0, 1.0, -1.5, 0.25]),
        };
        let y = self.mk(
            Op::Pad {
                axis,
                before,
                after,
                value,
            },
            &[&x],
            x.mag.max(value.abs()),
            x.exact,
        )?;
        self.push(y)
    }

    fn p_matmul(&mut self) -> Option<()> {
        let int = self.chance(0.1);
        let x = self.pick(|i| (if int { i.is_int() } else { i.is_f32() }) && i.rank() >= 1)?;
        let x = if x.rank() == 1 {
            let n = x.ty.shape[0].clone();
            let s = if self.chance(0.5) {
                vec![Dim::c(1), n]
            } else {
                vec![n, Dim::c(1)]
            };
            self.mk(Op::Reshape(s), &[&x], x.mag, x.exact)?
        } else {
            x
        };
        let x = if int && x.mag > 10.0 {
            self.bin_scalar(BinaryOp::Rem, &x, 5.0)?
        } else {
            x
        };
        let r = x.rank();
        let k = x.ty.shape[r - 1].clone();
        let kc = k.as_const().map(|c| c as u64);
        let n = self.sh.static_dim() as u64;
        let swap_last = |rank: usize| -> Vec<usize> {
            let mut p: Vec<usize> = (0..rank).collect();
            p.swap(rank - 1, rank - 2);
            p
        };
        // A batch axis: x's own (static) one, or a new one (the weight has a higher rank).
        let batch = if r >= 3 {
            x.ty.shape[r - 3].as_const().map_or(1, |c| c as u64)
        } else {
            self.sh.static_dim() as u64
        };
        let y = match self.rng().below(7) {
            _ if int => self.mk(Op::Permute(swap_last(r)), &[&x], x.mag, true)?,
            0 | 1 if kc.is_some() => self.new_param(vec![kc?, n])?,
            2 | 3 if kc.is_some() => {
                // x @ permute(w) with w [N, K]: the transposed path.
                let w = self.new_param(vec![n, kc?])?;
                self.mk(Op::Permute(vec![1, 0]), &[&w], w.mag, true)?
            }
            4 => {
                let x2 = if self.chance(0.5) {
                    self.un(UnaryOp::Tanh, &x)?
                } else {
                    x.clone()
                };
                self.mk(Op::Permute(swap_last(r)), &[&x2], x2.mag, x2.exact)?
            }
            5 if kc.is_some() => {
                let b = if self.chance(0.5) { batch } else { 1 };
                if self.chance(0.5) {
                    self.new_param(vec![b, kc?, n])?
                } else {
                    let w = self.new_param(vec![b, n, kc?])?;
                    self.mk(Op::Permute(vec![0, 2, 1]), &[&w], w.mag, true)?
                }
            }
            _ => {
                let kk = k.clone();
                self.pick(|i| i.is_f32() && i.rank() >= 2 && i.ty.shape[i.rank() - 2] == kk)?
            }
        };
        let kv = self.sh.eval(&k) as f64;
        let z = self.mk(Op::MatMul, &[&x, &y], kv * x.mag * y.mag, int)?;
        let z = self.tame(z)?;
        self.push(z)
    }

    fn p_gather(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let mut shape = x.ty.shape.clone();
        if self.chance(0.6) {
            shape[axis] = self.sh.dim();
        }
        let n = x.ty.shape[axis].clone();
        let idx = self.indices(&shape, &n)?;
        let y = self.mk(Op::Gather { axis }, &[&x, &idx], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_take(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let rank = self.rng().below(3);
        let shape = self.sh.shape(rank, 16);
        let n = x.ty.shape[axis].clone();
        let idx = self.indices(&shape, &n)?;
        let y = self.mk(Op::Take { axis }, &[&x, &idx], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_scatter(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let mut shape = x.ty.shape.clone();
        if self.chance(0.6) {
            shape[axis] = self.sh.dim();
        }
        let n = x.ty.shape[axis].clone();
        let idx = self.indices(&shape, &n)?;
        let src = {
            let t = TensorType::new(x.dtype(), shape.clone());
            match self.pick(|i| i.ty == t) {
                Some(s) if self.chance(0.5) => s,
                _ => {
                    let idx2 = self.indices(&shape, &n)?;
                    let gth = self.mk(Op::Gather { axis }, &[&x, &idx2], x.mag, x.exact)?;
                    if x.is_bool() {
                        self.un(UnaryOp::Not, &gth)?
                    } else {
                        self.un(UnaryOp::Neg, &gth)?
                    }
                }
            }
        };
        let y = self.mk(
            Op::Scatter { axis },
            &[&x, &idx, &src],
            x.mag.max(src.mag),
            x.exact && src.exact,
        )?;
        self.push(y)
    }

    fn p_dynamic_slice(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let d = x.ty.shape[axis].clone();
        let size = self.dim_at_most(&d);
        let n = self.sh.eval(&d);
        let start = self.int_scalar(-2, n + 2)?;
        let y = self.mk(Op::DynamicSlice { axis, size }, &[&x, &start], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_dynamic_update_slice(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1)?;
        let axis = self.rng().below(x.rank());
        let d = x.ty.shape[axis].clone();
        let size = self.dim_at_most(&d);
        let n = self.sh.eval(&d);
        let s1 = self.int_scalar(-2, n + 2)?;
        let w = self.mk(Op::DynamicSlice { axis, size }, &[&x, &s1], x.mag, x.exact)?;
        let u = if x.is_bool() {
            self.un(UnaryOp::Not, &w)?
        } else {
            self.un(UnaryOp::Neg, &w)?
        };
        let s2 = self.int_scalar(-2, n + 2)?;
        let y = self.mk(Op::DynamicUpdateSlice { axis }, &[&x, &u, &s2], x.mag, x.exact)?;
        self.push(y)
    }

    fn p_cumsum(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1 && (i.is_f32() || i.is_int()))?;
        let axis = self.rng().below(x.rank());
        let n = self.sh.eval(&x.ty.shape[axis]) as f64;
        let exclusive = self.chance(0.4);
        let reverse = self.chance(0.4);
        let y = self.mk(
            Op::Cumsum {
                axis,
                exclusive,
                reverse,
            },
            &[&x],
            n * x.mag,
            x.exact && x.is_int(),
        )?;
        let y = self.tame(y)?;
        self.push(y)
    }

    fn p_topk(&mut self) -> Option<()> {
        let x = self.pick(|i| i.rank() >= 1 && i.exact && (i.is_f32() || i.is_int()))?;
        let axis = self.rng().below(x.rank());
        let d = x.ty.shape[axis].clone();
        let k = self.dim_at_most(&d);
        let largest = self.chance(0.6);
        let n = self.sh.eval(&d) as f64;
        let vals = self.mk(Op::TopK { k, axis, largest }, &[&x], x.mag, true)?;
        let idx = Info {
            v: Value {
                node: vals.v.node,
                index: 1,
            },
            ty: self.g.node(vals.v.node).outputs[1].clone(),
            mag: n,
            exact: true,
        };
        self.push(vals)?;
        self.push(idx)
    }

    fn p_rng(&mut self) -> Option<()> {
        let rank = self.rng().below(4);
        let shape = self.sh.shape(rank, 256);
        let u = self.rng_value(shape)?;
        self.push(u)
    }

    fn p_iota(&mut self) -> Option<()> {
        let rank = 1 + self.rng().below(3);
        let shape = self.sh.shape(rank, 256);
        let axis = self.rng().below(rank);
        let dtype = *self.rng().pick(&[DType::F32, DType::I32, DType::I64]);
        let m = self.sh.eval(&shape[axis]) as f64;
        let y = self.mk(Op::Iota { shape, axis, dtype }, &[], m, true)?;
        self.push(y)
    }

    fn p_dim(&mut self) -> Option<()> {
        let d = match self.rng().below(4) {
            0 => Dim::c(self.sh.static_dim()),
            _ if self.sh.syms.is_empty() => return None,
            1 => self.sym()?,
            2 => {
                let a = self.sym()?;
                let b = self.sym()?;
                &a * &b
            }
            _ => {
                let a = self.sym()?;
                &(&a * &Dim::c(2)) - &Dim::c(3)
            }
        };
        let v = self.sh.eval(&d).abs() as f64;
        let y = self.mk(Op::DimSize(d), &[], v, true)?;
        let y = if self.chance(0.5) {
            self.cast(&y, DType::F32)?
        } else {
            y
        };
        let y = self.tame(y)?;
        self.push(y)
    }

    fn p_const(&mut self) -> Option<()> {
        let d = *self
            .rng()
            .pick(&[DType::F32, DType::F32, DType::I64, DType::I32, DType::Bool]);
        let c = if self.chance(0.5) {
            self.random_scalar(d)
        } else {
            let rank = 1 + self.rng().below(2);
            let shape: Vec<u64> = (0..rank).map(|_| *self.rng().pick(&[1u64, 2, 3, 4])).collect();
            self.const_tensor(d, shape)
        };
        self.push(c)
    }

    /// Integer arithmetic that wraps around (the interpreter wraps `i32` results after every
    /// op; fused code must too): products with large constants, then brought back with `rem`,
    /// a division or a comparison.
    fn p_wrap(&mut self) -> Option<()> {
        let x = self.pick(|i| i.is_int())?;
        let big = if x.dtype() == DType::I32 {
            *self.rng().pick(&[65_537.0, 46_341.0, 2_147_483_647.0, -1_000_003.0])
        } else {
            *self.rng().pick(&[
                4_294_967_311.0,
                3_037_000_499.0,
                9_223_372_036_854_775_807.0,
                -1_000_003.0,
            ])
        };
        let c = self.scalar(x.dtype(), big);
        let mut y = self.bin(BinaryOp::Mul, &x, &c)?;
        if self.chance(0.5) {
            let z = self.partner(&x)?;
            y = self.bin(BinaryOp::Mul, &y, &z)?;
        }
        if self.chance(0.5) {
            let z = self.random_scalar(x.dtype());
            y = self.bin(BinaryOp::Add, &y, &z)?;
        }
        let full = if x.dtype() == DType::I32 {
            2f64.powi(31)
        } else {
            2f64.powi(63)
        };
        y.mag = full;
        let r = match self.rng().below(3) {
            0 => {
                let k = *self.rng().pick(&[97.0, 1009.0, 7.0, -13.0]);
                let mut r = self.bin_scalar(BinaryOp::Rem, &y, k)?;
                r.mag = f64::abs(k);
                r
            }
            1 => {
                let k = *self.rng().pick(&[65_536.0, -3.0, 1_000_000.0]);
                let mut d = self.bin_scalar(BinaryOp::Div, &y, k)?;
                d.mag = full;
                let mut r = self.bin_scalar(BinaryOp::Rem, &d, 1009.0)?;
                r.mag = 1009.0;
                r
            }
            _ => {
                let op = *self.rng().pick(&[BinaryOp::Lt, BinaryOp::Gt, BinaryOp::Eq]);
                let zero = self.scalar(x.dtype(), 0.0);
                self.bin(op, &y, &zero)?
            }
        };
        self.push(r)
    }

    /// A normalisation over some (mostly trailing) axes, as models write them: softmax, layer
    /// norm, RMS norm, log-sum-exp (the scheduler fuses these reductions into their consumers).
    fn p_norm(&mut self) -> Option<()> {
        let x = self.pick(|i| i.is_f32() && i.rank() >= 1)?;
        let r = x.rank();
        let axes: Vec<usize> = if self.chance(0.7) {
            let k = 1 + self.rng().below(r.min(2));
            (r - k..r).collect()
        } else {
            self.random_axes(r)
        };
        if axes.is_empty() {
            return None;
        }
        let count = axes
            .iter()
            .map(|&a| self.sh.eval(&x.ty.shape[a]))
            .product::<i64>()
            .max(1) as f64;
        let keep = |op| Op::Reduce {
            op,
            axes: axes.clone(),
            keepdim: true,
        };
        let y = match self.rng().below(4) {
            0 => {
                // softmax: exp(x - max) / sum(exp(x - max)); the sum is at least 1
                let m = self.mk(keep(ReduceOp::Max), &[&x], x.mag, x.exact)?;
                let d = self.bin(BinaryOp::Sub, &x, &m)?;
                let mut e = self.un(UnaryOp::Exp, &d)?;
                e.mag = 1.0;
                let sum = self.mk(keep(ReduceOp::Sum), &[&e], count, false)?;
                let mut y = self.bin(BinaryOp::Div, &e, &sum)?;
                y.mag = 1.0;
                y
            }
            1 | 2 => {
                // layer norm (centred) or RMS norm, with eps = 1 to stay well conditioned
                let centred = self.rng().below(2) == 1;
                let d = if centred {
                    let sum = self.mk(keep(ReduceOp::Sum), &[&x], x.mag * count, false)?;
                    let mut mean = self.bin_scalar(BinaryOp::Mul, &sum, 1.0 / count)?;
                    mean.mag = x.mag;
                    self.bin(BinaryOp::Sub, &x, &mean)?
                } else {
                    x.clone()
                };
                let sq = self.bin(BinaryOp::Mul, &d, &d)?;
                let ss = self.mk(keep(ReduceOp::Sum), &[&sq], sq.mag * count, false)?;
                let var = self.bin_scalar(BinaryOp::Mul, &ss, 1.0 / count)?;
                let ve = self.bin_scalar(BinaryOp::Add, &var, 1.0)?;
                let rs = self.un(UnaryOp::Rsqrt, &ve)?;
                let mut y = self.bin(BinaryOp::Mul, &d, &rs)?;
                y.mag = d.mag;
                // An affine weight over the trailing normalised axes.
                let trailing: Option<Vec<u64>> = (axes == (r - axes.len()..r).collect::<Vec<_>>())
                    .then(|| {
                        axes.iter()
                            .map(|&a| x.ty.shape[a].as_const().map(|c| c as u64))
                            .collect()
                    })
                    .flatten();
                match trailing {
                    Some(shape) if self.chance(0.6) => {
                        let gamma = self.new_param(shape.clone())?;
                        let beta = self.new_param(shape)?;
                        let g = self.bin(BinaryOp::Mul, &y, &gamma)?;
                        self.bin(BinaryOp::Add, &g, &beta)?
                    }
                    _ => y,
                }
            }
            _ => {
                // log-sum-exp: max + log(sum(exp(x - max)))
                let m = self.mk(keep(ReduceOp::Max), &[&x], x.mag, x.exact)?;
                let d = self.bin(BinaryOp::Sub, &x, &m)?;
                let mut e = self.un(UnaryOp::Exp, &d)?;
                e.mag = 1.0;
                let sum = self.mk(keep(ReduceOp::Sum), &[&e], count, false)?;
                let l = self.un(UnaryOp::Log, &sum)?;
                self.bin(BinaryOp::Add, &m, &l)?
            }
        };
        let y = self.tame(y)?;
        self.push(y)
    }

    /// A recurrent cell over the leading axis of a sequence: `h = tanh(x[i] @ W + h @ U + b)`,
    /// the step's input taken with `dynamic_slice` at the loop index, the states emitted.
    fn p_rnn(&mut self) -> Option<()> {
        if self.depth > 0 {
            return None;
        }
        let seq = self.pick(|i| i.is_f32() && i.rank() >= 2 && i.rank() <= 3 && i.ty.shape[i.rank() - 1].is_const())?;
        let r = seq.rank();
        let t = seq.ty.shape[0].clone();
        let n_trips = self.sh.eval(&t);
        let d = seq.ty.shape[r - 1].as_const()? as u64;
        let h = self.sh.static_dim() as u64;
        let row: Shape = if r == 2 {
            vec![Dim::c(1), Dim::c(d as i64)]
        } else {
            seq.ty.shape[1..].to_vec()
        };
        let mut h_shape = row.clone();
        *h_shape.last_mut()? = Dim::c(h as i64);
        let zero = self.scalar(DType::F32, 0.0);
        let h0 = self.mk(Op::Expand(h_shape.clone()), &[&zero], 0.0, true)?;
        if n_trips > 64 {
            return None;
        }
        let max_trips = if t.is_const() {
            n_trips as u64
        } else {
            n_trips.max(16) as u64
        };

        let sh = std::mem::take(&mut self.sh);
        let mut body = Builder::new(sh, self.depth + 1);
        let built = (|| {
            let i = body.g.add_input("i", TensorType::scalar(DType::I64));
            let hc = body.g.add_input("h", h0.ty.clone());
            let xs = body.g.add_input("xs", seq.ty.clone());
            let info = |v, ty: &TensorType, mag| Info {
                v: Value::of(v),
                ty: ty.clone(),
                mag,
                exact: false,
            };
            let (i, hc, xs) = (
                info(i, &TensorType::scalar(DType::I64), n_trips as f64),
                info(hc, &h0.ty, 1.0),
                info(xs, &seq.ty, seq.mag),
            );
            let step = body.mk(
                Op::DynamicSlice {
                    axis: 0,
                    size: Dim::c(1),
                },
                &[&xs, &i],
                seq.mag,
                false,
            )?;
            let step = body.mk(Op::Reshape(row.clone()), &[&step], seq.mag, false)?;
            let w = body.new_param(vec![d, h])?;
            let u = body.new_param(vec![h, h])?;
            let a = body.mk(Op::MatMul, &[&step, &w], 1.0, false)?;
            let b = body.mk(Op::MatMul, &[&hc, &u], 1.0, false)?;
            // Scale the recurrence by a power of two (exact) so that `h @ U` has gain at most
            // 1/2: the loop then damps rounding differences between backends instead of
            // amplifying them step after step (found by the `compile_diff` fuzz target).
            let gain = u.mag * h as f64;
            let scale = 0.5f64.powi((2.0 * gain).log2().ceil().max(0.0) as i32);
            let b = body.bin_scalar(BinaryOp::Mul, &b, scale)?;
            let s = body.bin(BinaryOp::Add, &a, &b)?;
            let s = if body.chance(0.5) {
                let bias = body.new_param(vec![h])?;
                body.bin(BinaryOp::Add, &s, &bias)?
            } else {
                s
            };
            let next = body.un(UnaryOp::Tanh, &s)?;
            let mut outputs = vec![("h".to_string(), next.v)];
            let has_stop = body.chance(0.3);
            if has_stop {
                let k = body.rng().range(0, n_trips.max(1)) as f64;
                let stop = body.bin_scalar(BinaryOp::Ge, &i, k)?;
                outputs.push(("stop".to_string(), stop.v));
            }
            outputs.push(("e".to_string(), next.v));
            Some((outputs, has_stop))
        })();
        self.sh = std::mem::take(&mut body.sh);
        let (outputs, has_stop) = built?;
        let mut g = body.g;
        g.outputs = outputs;
        let l = LoopOp {
            trips: t,
            max_trips,
            n_carried: 1,
            has_stop,
            n_emit: 1,
            body: g,
        };
        let node = self.mk(Op::Loop(Box::new(l)), &[&h0, &seq], 1.0, false)?;
        let states = Info {
            v: Value {
                node: node.v.node,
                index: 1,
            },
            ty: self.g.node(node.v.node).outputs[1].clone(),
            mag: 1.0,
            exact: false,
        };
        self.push(node)?;
        self.push(states)
    }

    /// A value with special elements (NaN, ±inf, ±0 among ordinary ones): a constant, or an
    /// ordinary value with some elements replaced.
    fn p_special(&mut self) -> Option<()> {
        if avoid("special") {
            return None;
        }
        const SPECIAL: [f64; 9] = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
            1.5,
            -2.0,
            3.0,
            0.5,
        ];
        let x = if self.chance(0.5) {
            let n = 2 + self.rng().below(7);
            let shape = if n.is_multiple_of(2) && self.chance(0.5) {
                vec![2, n as u64 / 2]
            } else {
                vec![n as u64]
            };
            let data = (0..n).map(|_| *self.rng().pick(&SPECIAL)).collect();
            let lit = Literal {
                dtype: DType::F32,
                shape,
                data: LiteralData::Float(data),
            };
            self.mk(Op::Const(lit), &[], 3.0, true)?
        } else {
            // select(x > c, x, special) on an exact ordinary value
            let x = self.pick(|i| i.is_f32() && i.exact)?;
            let c = self.random_scalar(DType::F32);
            let cond = self.bin(BinaryOp::Gt, &x, &c)?;
            let v = *self.rng().pick(&SPECIAL[..4]);
            let sp = self.scalar(DType::F32, v);
            self.mk(Op::Select, &[&cond, &x, &sp], x.mag, true)?
        };
        self.specials.push(x);
        Some(())
    }

    /// An op on a value with special elements (see [`Builder::p_special`]). Float results stay
    /// special; comparisons, casts and indices are ordinary values again.
    fn p_special_use(&mut self) -> Option<()> {
        if self.specials.is_empty() {
            return None;
        }
        let n = self.specials.len();
        let k = if self.chance(0.6) { n - 1 } else { self.rng().below(n) };
        let x = self.specials[k].clone();
        // An operand for x: itself, another special value, an ordinary exact one, a scalar.
        let other = |b: &mut Builder| -> Info {
            match b.rng().below(4) {
                0 => x.clone(),
                1 => {
                    let m = b.specials.len();
                    let j = b.rng().below(m);
                    b.specials[j].clone()
                }
                2 => b.pick(|i| i.is_f32() && i.exact).unwrap_or_else(|| x.clone()),
                _ => b.random_scalar(DType::F32),
            }
        };
        let special = |b: &mut Builder, y: Info| {
            b.specials.push(y);
            Some(())
        };
        match self.rng().below(11) {
            0 | 1 => {
                let op = *self.rng().pick(&Op::UNARY[..16]);
                let y = self.un(op, &x)?;
                special(self, y)
            }
            2 | 3 => {
                let op = *self.rng().pick(&[
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Mul,
                    BinaryOp::Div,
                    BinaryOp::Max,
                    BinaryOp::Min,
                    BinaryOp::Rem,
                    BinaryOp::Pow,
                ]);
                let y = other(self);
                let (a, b) = if self.chance(0.5) {
                    (x.clone(), y)
                } else {
                    (y, x.clone())
                };
                let z = self.bin(op, &a, &b)?;
                special(self, z)
            }
            4 => {
                let y = other(self);
                if !(x.exact && y.exact) {
                    return None;
                }
                let op = *self.rng().pick(&[
                    BinaryOp::Eq,
                    BinaryOp::Ne,
                    BinaryOp::Lt,
                    BinaryOp::Le,
                    BinaryOp::Gt,
                    BinaryOp::Ge,
                ]);
                let z = self.bin(op, &x, &y)?;
                self.push(z)
            }
            5 => {
                if !x.exact {
                    return None;
                }
                let to = *self.rng().pick(&[DType::I32, DType::I64, DType::Bool]);
                let mut y = self.cast(&x, to)?;
                // Saturated infinities.
                y.mag = if to == DType::Bool { 1.0 } else { 2f64.powi(63) };
                let y = self.tame(y)?;
                self.push(y)
            }
            6 => {
                let axes = self.random_axes(x.rank());
                let op = *self
                    .rng()
                    .pick(&[ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum, ReduceOp::Prod]);
                let keepdim = self.chance(0.5);
                let exact = x.exact && matches!(op, ReduceOp::Max | ReduceOp::Min);
                let y = self.mk(Op::Reduce { op, axes, keepdim }, &[&x], x.mag, exact)?;
                special(self, y)
            }
            7 => {
                if !x.exact {
                    return None;
                }
                let axis = self.rng().below(x.rank().max(1)).min(x.rank().saturating_sub(1));
                if self.chance(0.5) {
                    let op = *self.rng().pick(&[ArgOp::ArgMax, ArgOp::ArgMin]);
                    let keepdim = self.chance(0.5);
                    let y = self.mk(Op::ArgReduce { op, axis, keepdim }, &[&x], 16.0, true)?;
                    self.push(y)
                } else {
                    let d = x.ty.shape.get(axis)?.clone();
                    let k = self.dim_at_most(&d);
                    let largest = self.chance(0.5);
                    let vals = self.mk(Op::TopK { k, axis, largest }, &[&x], x.mag, true)?;
                    let idx = Info {
                        v: Value {
                            node: vals.v.node,
                            index: 1,
                        },
                        ty: self.g.node(vals.v.node).outputs[1].clone(),
                        mag: 16.0,
                        exact: true,
                    };
                    self.specials.push(vals);
                    self.push(idx)
                }
            }
            8 => {
                let c = self.pick(|i| i.is_bool())?;
                let y = other(self);
                let (a, b) = if self.chance(0.5) {
                    (x.clone(), y)
                } else {
                    (y, x.clone())
                };
                let z = self.mk(Op::Select, &[&c, &a, &b], x.mag, a.exact && b.exact)?;
                special(self, z)
            }
            9 => {
                let y = match self.rng().below(3) {
                    0 => self.mk(Op::Reshape(vec![mlc_ir::numel(&x.ty.shape)]), &[&x], x.mag, x.exact)?,
                    1 if x.rank() >= 1 => {
                        let axis = self.rng().below(x.rank());
                        let y = other(self);
                        self.mk(Op::Concat { axis }, &[&x, &y], x.mag, x.exact && y.exact)?
                    }
                    _ if x.rank() >= 1 => {
                        let axis = self.rng().below(x.rank());
                        let (exclusive, reverse) = (self.chance(0.5), self.chance(0.5));
                        self.mk(
                            Op::Cumsum {
                                axis,
                                exclusive,
                                reverse,
                            },
                            &[&x],
                            x.mag,
                            false,
                        )?
                    }
                    _ => return None,
                };
                special(self, y)
            }
            _ => {
                // A matrix product: NaN and inf must propagate through the GEMM.
                let n = self.sh.eval(x.ty.shape.last()?);
                let row = self.mk(Op::Reshape(vec![Dim::c(1), Dim::c(n)]), &[&x], x.mag, x.exact)?;
                let m = self.sh.static_dim() as u64;
                let w = self.new_param(vec![n as u64, m])?;
                let z = self.mk(Op::MatMul, &[&row, &w], x.mag, false)?;
                special(self, z)
            }
        }
    }

    /// A loop with carried values, captures, an optional stop flag and emitted values.
    fn p_loop(&mut self) -> Option<()> {
        if self.depth >= 2 || (self.depth == 1 && !self.chance(0.3)) {
            return None;
        }
        let (trips, max_trips) = match self.rng().below(10) {
            0 => (Dim::c(0), 2),
            1..=5 => {
                let t = self.rng().range(1, 4);
                (Dim::c(t), (t + self.rng().range(0, 2)) as u64)
            }
            _ if self.sh.syms.is_empty() => (Dim::c(3), 3),
            6..=8 => (self.sym()?, 16),
            _ => (&self.sym()? + &Dim::c(1), 17),
        };
        let n_trips = self.sh.eval(&trips);

        // Initial carried values, made to fit the bound the body keeps them in.
        let mut init = Vec::new();
        for _ in 0..self.rng().below(3) {
            let v = self.pick(|i| i.is_f32() || i.is_int() || i.is_bool())?;
            let v = if v.is_f32() && v.mag > 1.0 {
                if self.chance(0.5) {
                    self.clamp(&v, 1.0)?
                } else {
                    self.un(UnaryOp::Tanh, &v)?
                }
            } else {
                v
            };
            init.push(v);
        }
        let mut captures = Vec::new();
        for _ in 0..self.rng().below(3) {
            captures.push(self.pick(|_| true)?);
        }

        let sh = std::mem::take(&mut self.sh);
        let mut body = Builder::new(sh, self.depth + 1);
        let i_node = body.g.add_input("i", TensorType::scalar(DType::I64));
        let index = Info {
            v: Value::of(i_node),
            ty: TensorType::scalar(DType::I64),
            mag: n_trips as f64,
            exact: true,
        };
        body.pool.push(index.clone());
        let mut carried = Vec::new();
        for (j, v) in init.iter().enumerate() {
            let n = body.g.add_input(&format!("c{j}"), v.ty.clone());
            let mag = if v.is_int() {
                v.mag.max(97.0)
            } else {
                1.0f64.max(f64::from(v.is_bool()))
            };
            let c = Info {
                v: Value::of(n),
                ty: v.ty.clone(),
                mag,
                exact: v.exact,
            };
            body.pool.push(c.clone());
            carried.push(c);
        }
        for (j, v) in captures.iter().enumerate() {
            let n = body.g.add_input(&format!("k{j}"), v.ty.clone());
            body.pool.push(Info {
                v: Value::of(n),
                ..v.clone()
            });
        }
        let steps = 2 + body.rng().below(5);
        body.run(steps);
        let result = body.finish_loop(&carried, &index, n_trips);
        self.sh = std::mem::take(&mut body.sh);
        let (outputs, has_stop, emits) = result?;
        let mut body_g = body.g;
        body_g.outputs = outputs;
        let l = LoopOp {
            trips,
            max_trips,
            n_carried: carried.len(),
            has_stop,
            n_emit: emits.len(),
            body: body_g,
        };
        let mut operands: Vec<&Info> = init.iter().collect();
        operands.extend(captures.iter());
        let node = self.mk(Op::Loop(Box::new(l)), &operands, 0.0, true)?;
        let outs = self.g.node(node.v.node).outputs.clone();
        for (k, ty) in outs.into_iter().enumerate() {
            let (mag, exact) = if k < carried.len() {
                (carried[k].mag, carried[k].exact)
            } else {
                let e = &emits[k - carried.len()];
                (e.mag, e.exact)
            };
            self.pool.push(Info {
                v: Value {
                    node: node.v.node,
                    index: k as u32,
                },
                ty,
                mag,
                exact,
            });
        }
        Some(())
    }

    /// The body's outputs: next carried values (kept within their bounds and exactness), the
    /// stop flag, the emitted values.
    #[allow(clippy::type_complexity)]
    fn finish_loop(
        &mut self,
        carried: &[Info],
        index: &Info,
        n_trips: i64,
    ) -> Option<(Vec<(String, Value)>, bool, Vec<Info>)> {
        let mut outputs = Vec::new();
        for (j, c) in carried.iter().enumerate() {
            let shape = c.ty.shape.clone();
            let fits = |i: &Info| {
                i.dtype() == c.dtype()
                    && (i.exact || !c.exact)
                    && mlc_ir::broadcast_shapes(&[&shape, &i.ty.shape]).as_ref() == Some(&shape)
            };
            let u = self.pick(fits);
            let next = match (c.dtype(), u) {
                (DType::Bool, Some(u)) => {
                    let op = *self.rng().pick(&[BinaryOp::Xor, BinaryOp::Or, BinaryOp::And]);
                    self.bin(op, c, &u)?
                }
                (DType::Bool, None) => self.un(UnaryOp::Not, c)?,
                (_, Some(u)) if c.is_int() => {
                    let s = self.bin(BinaryOp::Add, c, &u)?;
                    let s = if s.mag > I_LIMIT {
                        self.bin_scalar(BinaryOp::Rem, &s, 1009.0)?
                    } else {
                        s
                    };
                    self.bin_scalar(BinaryOp::Rem, &s, 97.0)?
                }
                (_, None) if c.is_int() => {
                    let s = self.bin_scalar(BinaryOp::Add, c, 3.0)?;
                    self.bin_scalar(BinaryOp::Rem, &s, 97.0)?
                }
                (_, Some(u)) => {
                    let h = self.bin_scalar(BinaryOp::Mul, c, 0.5)?;
                    let s = self.bin(BinaryOp::Add, &h, &u)?;
                    if !c.exact && self.chance(0.5) {
                        self.un(UnaryOp::Tanh, &s)?
                    } else {
                        self.clamp(&s, 1.0)?
                    }
                }
                (_, None) => self.un(UnaryOp::Neg, c)?,
            };
            if next.ty != c.ty {
                return None;
            }
            outputs.push((format!("c{j}"), next.v));
        }
        let has_stop = self.chance(0.3);
        if has_stop {
            let stop = match self.rng().below(3) {
                0 => {
                    let b = self.pick(|i| i.is_bool() && i.rank() <= 3)?;
                    let axes: Vec<usize> = (0..b.rank()).collect();
                    self.mk(
                        Op::Reduce {
                            op: ReduceOp::Any,
                            axes,
                            keepdim: false,
                        },
                        &[&b],
                        1.0,
                        true,
                    )?
                }
                _ => {
                    let k = self.rng().range(0, n_trips.max(1)) as f64;
                    let op = *self.rng().pick(&[BinaryOp::Ge, BinaryOp::Eq, BinaryOp::Gt]);
                    self.bin_scalar(op, index, k)?
                }
            };
            outputs.push(("stop".to_string(), stop.v));
        }
        let mut emits = Vec::new();
        let n_emit = if carried.is_empty() {
            1 + self.rng().below(2)
        } else {
            self.rng().below(3)
        };
        for j in 0..n_emit {
            let sh = Shared {
                bindings: self.sh.bindings.clone(),
                ..Shared::default()
            };
            let lim = self.sh.max_numel;
            let e = self.pick(|i| sh.numel(&i.ty.shape) * n_trips.max(1) <= lim)?;
            outputs.push((format!("e{j}"), e.v));
            emits.push(e);
        }
        Some((outputs, has_stop, emits))
    }

    /// Runs `n` successful productions (or gives up after many failures).
    fn run(&mut self, n: usize) {
        let weights: Vec<u32> = STEPS.iter().map(|s| s.1).collect();
        let mut done = 0;
        let mut tries = 0;
        while done < n && tries < 20 * n {
            tries += 1;
            let k = self.rng().weighted(&weights);
            if (STEPS[k].0)(self).is_some() {
                done += 1;
            }
        }
    }
}

/// Generates the case of a seed.
pub fn generate(seed: u64) -> Case {
    let mut sh = Shared {
        rng: Rng::new(seed),
        max_numel: MAX_NUMEL,
        ..Shared::default()
    };
    let large = sh.rng.chance(LARGE_SHARE);
    let input_numel = if large {
        sh.max_numel = LARGE_NUMEL;
        LARGE_INPUT_NUMEL
    } else {
        MAX_INPUT_NUMEL
    };
    // Symbols and their values.
    let n_syms = sh.rng.below(3);
    for s in &SYMS[..n_syms] {
        let v = *sh.rng.pick(&DIMS);
        sh.bindings.insert(s.to_string(), v);
        sh.syms.push(s.to_string());
    }
    let mut b = Builder::new(sh, 0);
    let mut ranges = HashMap::new();
    let n_inputs = 1 + b.rng().below(3);
    let mut bound: Vec<String> = Vec::new();
    for k in 0..n_inputs {
        let rank = b.sh.rank();
        let rank = if large { rank.max(2) } else { rank };
        let shape = b.sh.shape(rank, input_numel);
        for d in &shape {
            for s in d.symbols() {
                if !bound.contains(&s) {
                    bound.push(s);
                }
            }
        }
        let dtype = *b.rng().pick(&[
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::F32,
            DType::I64,
            DType::I32,
            DType::Bool,
        ]);
        let name = format!("x{k}");
        let mag = if dtype.is_int() {
            let hi = *b.rng().pick(&[2, 5, 16]);
            ranges.insert(name.clone(), hi);
            hi as f64
        } else if dtype == DType::Bool {
            1.0
        } else {
            6.0
        };
        let n = b.g.add_input(&name, TensorType::new(dtype, shape.clone()));
        b.pool.push(Info {
            v: Value::of(n),
            ty: TensorType::new(dtype, shape),
            mag,
            exact: true,
        });
    }
    // Only symbols some input binds may appear elsewhere.
    b.sh.syms.retain(|s| bound.contains(s));
    let syms = b.sh.syms.clone();
    b.sh.bindings.retain(|s, _| syms.contains(s));
    for _ in 0..b.rng().below(2) {
        let rank = 1 + b.rng().below(2);
        let shape: Vec<u64> = (0..rank).map(|_| *b.rng().pick(&DIMS) as u64).collect();
        if let Some(p) = b.new_param(shape) {
            b.pool.push(p);
        }
    }
    let steps = 5 + b.rng().below(26);
    b.run(steps);

    // Outputs: the last value and a few others, computed ones preferred.
    let first_computed = n_inputs;
    let mut outs: Vec<Value> = Vec::new();
    if let Some(last) = b.pool.last() {
        outs.push(last.v);
    }
    for _ in 0..b.rng().below(4) {
        let k = if b.pool.len() > first_computed && b.chance(0.9) {
            let hi = b.pool.len() as i64 - 1;
            b.rng().range(first_computed as i64, hi) as usize
        } else {
            let n = b.pool.len();
            b.rng().below(n)
        };
        let v = b.pool[k].v;
        if !outs.contains(&v) {
            outs.push(v);
        }
    }
    if !b.specials.is_empty() && b.chance(0.7) {
        let n = b.specials.len();
        let k = if b.chance(0.5) { n - 1 } else { b.rng().below(n) };
        outs.push(b.specials[k].v);
    }
    let mut g = b.g;
    g.outputs = outs
        .into_iter()
        .enumerate()
        .map(|(k, v)| (format!("out{k}"), v))
        .collect();
    let mut params = b.sh.params;
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Case {
        seed,
        module: Module {
            name: format!("random_{seed}"),
            params,
            functions: vec![Function {
                name: ENTRY.to_string(),
                graph: g,
            }],
        },
        bindings: b.sh.bindings,
        ranges,
    }
}
