//! Scalar lowering of the Kernel IR to Cranelift IR.
//!
//! Values live in Cranelift types: `f32` as `F32`, `i32` as `I32`, `i64` as `I64`, `bool` as
//! `I8` holding 0 or 1 (also in memory: one byte per element). Loops are a header block with the
//! induction variable as block parameter; `let` variables are SSA values; accumulators are
//! frontend [`Variable`]s, so the SSA builder places the loop-carried block parameters.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, I8, I32, I64};
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use mlc_ir::{BinaryOp, DType, IExpr, KStmt, KernelFn, Scalar, UnaryOp, VExpr};

use super::libm::Libm;

/// Codegen errors are messages; the caller adds the kernel's name.
pub(super) type R<T> = Result<T, String>;

/// What the target and the options allow.
#[derive(Clone, Copy, Debug)]
pub(super) struct Features {
    /// Fuse `a*b + c` (and `a*b - c`, `c - a*b`) into one `fma`, in scalar and vector code alike.
    pub fma: bool,
    /// Honour `vectorize` marks on loops.
    pub vectorize: bool,
    /// Vector `floor`/`ceil`/`nearest` are native (SSE4.1 on x86-64).
    pub vector_round: bool,
    /// Vectorize reduction loops (partial accumulators).
    pub reductions: bool,
    /// Vectorize qualifying loops not marked `vectorize`.
    pub unmarked: bool,
    /// `exp`, `tanh`, `sigmoid` and `erf` as the inline polynomials of `vmath.rs`.
    pub poly_math: bool,
}

/// A scalar variable in scope.
#[derive(Clone, Copy, Debug)]
pub(super) enum SVar {
    Let(Value, DType),
    Acc(Variable, DType),
}

impl SVar {
    pub(super) fn dtype(self) -> DType {
        match self {
            SVar::Let(_, d) | SVar::Acc(_, d) => d,
        }
    }
}

/// Memory flags of every buffer access: the caller guarantees validity (no trap), nothing about
/// alignment beyond the element's.
pub(super) fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// The Cranelift type of a kernel dtype.
pub(super) fn clif_type(d: DType) -> R<Type> {
    match d {
        DType::F32 => Ok(F32),
        DType::I32 => Ok(I32),
        DType::I64 => Ok(I64),
        DType::Bool => Ok(I8),
        DType::F16 | DType::BF16 => Err(format!("dtype {d} is not supported by the CPU JIT")),
    }
}

/// Element size in bytes.
pub(super) fn elem_size(d: DType) -> i64 {
    match d {
        DType::F32 | DType::I32 => 4,
        DType::I64 => 8,
        DType::Bool => 1,
        DType::F16 | DType::BF16 => 2,
    }
}

/// How an `fma` replaces an add or subtract of a product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FmaForm {
    /// `x*y + c`
    Add,
    /// `x*y - c` = `fma(x, y, -c)`
    SubC,
    /// `c - x*y` = `fma(-x, y, c)`
    SubP,
}

/// Matches `x*y + c`, `c + x*y`, `x*y - c`, `c - x*y`, returning `(x, y, c, form)`.
pub(super) fn fma_pattern<'e>(
    op: BinaryOp,
    a: &'e VExpr,
    b: &'e VExpr,
) -> Option<(&'e VExpr, &'e VExpr, &'e VExpr, FmaForm)> {
    let mul = |e: &'e VExpr| match e {
        VExpr::Binary(BinaryOp::Mul, x, y) => Some((&**x, &**y)),
        _ => None,
    };
    match op {
        BinaryOp::Add => {
            if let Some((x, y)) = mul(a) {
                Some((x, y, b, FmaForm::Add))
            } else {
                mul(b).map(|(x, y)| (x, y, a, FmaForm::Add))
            }
        }
        BinaryOp::Sub => {
            if let Some((x, y)) = mul(a) {
                Some((x, y, b, FmaForm::SubC))
            } else {
                mul(b).map(|(x, y)| (x, y, a, FmaForm::SubP))
            }
        }
        _ => None,
    }
}

/// The state of lowering one kernel.
pub(super) struct Gen<'a, 'f> {
    pub k: &'a KernelFn,
    pub b: FunctionBuilder<'f>,
    pub feat: Features,
    /// Base addresses of the buffers.
    pub bufs: Vec<Value>,
    /// Values of the dims.
    pub dims: Vec<Value>,
    /// Index variables (loop variables and the parallel index), `I64`.
    pub ivars: HashMap<u32, Value>,
    /// Scalar variables (`let` and `acc`).
    pub svars: HashMap<u32, SVar>,
    /// Callouts, indexed by `Libm as usize`.
    pub libm: Vec<FuncRef>,
    /// How many loops were emitted as SIMD code.
    pub vectorized: usize,
}

impl Gen<'_, '_> {
    /// An integer constant of type `ty`, the immediate masked to the type's width (as the
    /// verifier requires for narrow types).
    pub(super) fn iconst(&mut self, ty: Type, v: i64) -> Value {
        let imm = match ty {
            I8 => i64::from(v as u8),
            I32 => i64::from(v as u32),
            _ => v,
        };
        self.b.ins().iconst(ty, imm)
    }

    pub(super) fn fconst(&mut self, v: f32) -> Value {
        self.b.ins().f32const(v)
    }

    /// Runs `body` in a nested scope: variables it declares are dropped afterwards.
    pub(super) fn scoped<T>(&mut self, body: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        let (iv, sv) = (self.ivars.clone(), self.svars.clone());
        let r = body(self);
        self.ivars = iv;
        self.svars = sv;
        r
    }

    /// `for i in start..end step step { body(i) }` (signed compare). Returns the induction
    /// variable's value at the exit (the first value not `< end`, or `start` if none ran), which
    /// dominates the code after the loop.
    pub(super) fn counted_loop(
        &mut self,
        start: Value,
        end: Value,
        step: i64,
        body: impl FnOnce(&mut Self, Value) -> R<()>,
    ) -> R<Value> {
        let header = self.b.create_block();
        let body_block = self.b.create_block();
        let exit = self.b.create_block();
        let i = self.b.append_block_param(header, I64);
        self.b.ins().jump(header, &[start.into()]);
        self.b.switch_to_block(header);
        let go = self.b.ins().icmp(IntCC::SignedLessThan, i, end);
        self.b.ins().brif(go, body_block, &[], exit, &[]);
        self.b.switch_to_block(body_block);
        body(self, i)?;
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.ins().jump(header, &[next.into()]);
        self.b.switch_to_block(exit);
        Ok(i)
    }

    pub(super) fn stmts(&mut self, body: &[KStmt]) -> R<()> {
        self.scoped(|g| {
            // The `let`s since the last loop: pinned before the next one.
            let mut lets = Vec::new();
            for s in body {
                if matches!(s, KStmt::Loop { .. }) && !lets.is_empty() {
                    g.pin(&lets);
                    lets.clear();
                }
                g.stmt(s)?;
                if let KStmt::Let { var, .. } = s
                    && let Some(&SVar::Let(v, _)) = g.svars.get(var)
                {
                    lets.push(v);
                }
            }
            Ok(())
        })
    }

    /// Keeps `values` computed here, before the loop that follows. Cranelift's optimiser places
    /// a pure value at its uses, and never hoists one with a constant operand out of a loop
    /// (the constant is rematerialised at the use), so a `let` that the Kernel IR hoisted out
    /// of a loop (`mean / n`, `rsqrt(var / n + eps)`) would sink back into it and run once per
    /// element. A store is fixed where it is, so its operand is computed before it; the slot is
    /// never read.
    fn pin(&mut self, values: &[Value]) {
        let size = 16 * values.len() as u32;
        let slot = self
            .b
            .create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 4));
        for (i, &v) in values.iter().enumerate() {
            self.b.ins().stack_store(I64, v, slot, 16 * i as i32);
        }
    }

    fn stmt(&mut self, s: &KStmt) -> R<()> {
        match s {
            KStmt::Loop {
                var,
                extent,
                vectorize,
                body,
            } => {
                let n = self.iexpr(extent)?;
                let vector = if *vectorize {
                    self.feat.vectorize && self.can_vectorize(*var, body)
                } else {
                    self.feat.unmarked && self.can_vectorize(*var, body) && no_store_load_overlap(body)
                };
                if vector {
                    self.vector_loop(*var, n, body)?;
                    self.vectorized += 1;
                } else if let Some(accs) = self.reduction_accs(*var, body) {
                    self.reduction_loop(*var, n, body, &accs)?;
                    self.vectorized += 1;
                } else {
                    let zero = self.iconst(I64, 0);
                    self.counted_loop(zero, n, 1, |g, i| {
                        g.scoped(|g| {
                            g.ivars.insert(*var, i);
                            g.stmts(body)
                        })
                    })?;
                }
                Ok(())
            }
            KStmt::Let { var, dtype, value } => {
                let (v, t) = self.vexpr(value)?;
                expect_dtype(*dtype, t, || format!("let v{var}"))?;
                self.svars.insert(*var, SVar::Let(v, t));
                Ok(())
            }
            KStmt::Acc { var, dtype, init } => {
                let (v, t) = self.vexpr(init)?;
                expect_dtype(*dtype, t, || format!("acc v{var}"))?;
                let x = self.b.declare_var(clif_type(t)?);
                self.b.def_var(x, v);
                self.svars.insert(*var, SVar::Acc(x, t));
                Ok(())
            }
            KStmt::Assign { var, value } => {
                let Some(&SVar::Acc(x, d)) = self.svars.get(var) else {
                    return Err(format!("v{var} is not an accumulator in scope"));
                };
                let (v, t) = self.vexpr(value)?;
                expect_dtype(d, t, || format!("assignment to v{var}"))?;
                self.b.def_var(x, v);
                Ok(())
            }
            KStmt::Store { buf, index, value } => {
                let d = self.buf_dtype(*buf)?;
                let (v, t) = self.vexpr(value)?;
                expect_dtype(d, t, || format!("store to buffer {buf}"))?;
                let addr = self.addr(*buf, index)?;
                self.b.ins().store(mem(), v, addr, 0);
                Ok(())
            }
        }
    }

    pub(super) fn buf_dtype(&self, buf: u32) -> R<DType> {
        let b = self
            .k
            .bufs
            .get(buf as usize)
            .ok_or_else(|| format!("buffer {buf} out of range"))?;
        clif_type(b.dtype)?;
        Ok(b.dtype)
    }

    /// The address of element `index` of buffer `buf`.
    pub(super) fn addr(&mut self, buf: u32, index: &IExpr) -> R<Value> {
        let d = self.buf_dtype(buf)?;
        let i = self.iexpr(index)?;
        let off = self.b.ins().imul_imm_s(i, elem_size(d));
        let base = self.bufs[buf as usize];
        let ptr = self.b.func.dfg.value_type(base);
        let off = if ptr == I64 {
            off
        } else {
            self.b.ins().ireduce(ptr, off)
        };
        Ok(self.b.ins().iadd(base, off))
    }

    /// An index expression, `I64`. `Div` and `Rem` truncate (their operands are non-negative
    /// by the IR's contract); a zero divisor gives 0, as [`IExpr::eval`] does.
    pub(super) fn iexpr(&mut self, e: &IExpr) -> R<Value> {
        Ok(match e {
            IExpr::Const(c) => self.iconst(I64, *c),
            IExpr::Var(v) => *self
                .ivars
                .get(v)
                .ok_or_else(|| format!("index variable i{v} is not in scope"))?,
            IExpr::Dim(d) => *self
                .dims
                .get(*d as usize)
                .ok_or_else(|| format!("dim {d} out of range"))?,
            IExpr::Add(a, b) => {
                let (a, b) = (self.iexpr(a)?, self.iexpr(b)?);
                self.b.ins().iadd(a, b)
            }
            IExpr::Mul(a, b) => {
                let (a, b) = (self.iexpr(a)?, self.iexpr(b)?);
                self.b.ins().imul(a, b)
            }
            IExpr::Div(a, b) | IExpr::Rem(a, b) => {
                let div = matches!(e, IExpr::Div(..));
                let x = self.iexpr(a)?;
                if let IExpr::Const(c) = **b
                    && c > 0
                {
                    // A known divisor: no guard, and Cranelift strength-reduces the division.
                    let y = self.iconst(I64, c);
                    return Ok(if div {
                        self.b.ins().sdiv(x, y)
                    } else {
                        self.b.ins().srem(x, y)
                    });
                }
                let y = self.iexpr(b)?;
                self.trunc_divrem(div, x, y, I64)
            }
        })
    }

    /// Truncating division or remainder that never traps: divisor 0 gives 0, divisor -1 gives
    /// the wrapping negation (remainder 0).
    fn trunc_divrem(&mut self, div: bool, x: Value, y: Value, ty: Type) -> Value {
        let (zero, one, m1) = (self.iconst(ty, 0), self.iconst(ty, 1), self.iconst(ty, -1));
        let is0 = self.b.ins().icmp(IntCC::Equal, y, zero);
        let is_m1 = self.b.ins().icmp(IntCC::Equal, y, m1);
        let bad = self.b.ins().bor(is0, is_m1);
        let ys = self.b.ins().select(bad, one, y);
        let r = if div {
            let q = self.b.ins().sdiv(x, ys);
            let neg = self.b.ins().ineg(x);
            self.b.ins().select(is_m1, neg, q)
        } else {
            self.b.ins().srem(x, ys)
        };
        self.b.ins().select(is0, zero, r)
    }

    /// Floor division or the remainder with the divisor's sign (Python's), never trapping:
    /// divisor 0 gives 0 (the interpreter reports an error there), `MIN / -1` wraps.
    fn floor_divrem(&mut self, div: bool, x: Value, y: Value, ty: Type) -> Value {
        let (zero, one, m1) = (self.iconst(ty, 0), self.iconst(ty, 1), self.iconst(ty, -1));
        let is0 = self.b.ins().icmp(IntCC::Equal, y, zero);
        let is_m1 = self.b.ins().icmp(IntCC::Equal, y, m1);
        let bad = self.b.ins().bor(is0, is_m1);
        let ys = self.b.ins().select(bad, one, y);
        let q = self.b.ins().sdiv(x, ys);
        let r = self.b.ins().srem(x, ys);
        // Truncation rounded toward zero; step down where the remainder and divisor differ in
        // sign.
        let r_nz = self.b.ins().icmp(IntCC::NotEqual, r, zero);
        let sx = self.b.ins().bxor(r, ys);
        let signs = self.b.ins().icmp(IntCC::SignedLessThan, sx, zero);
        let adjust = self.b.ins().band(r_nz, signs);
        let out = if div {
            let q1 = self.b.ins().iadd_imm_s(q, -1);
            let q = self.b.ins().select(adjust, q1, q);
            let neg = self.b.ins().ineg(x);
            self.b.ins().select(is_m1, neg, q)
        } else {
            let r1 = self.b.ins().iadd(r, ys);
            self.b.ins().select(adjust, r1, r)
        };
        self.b.ins().select(is0, zero, out)
    }

    pub(super) fn call(&mut self, f: Libm, args: &[Value]) -> Value {
        let inst = self.b.ins().call(self.libm[f as usize], args);
        self.b.inst_results(inst)[0]
    }

    /// The value of a scalar variable.
    pub(super) fn use_svar(&mut self, v: u32) -> R<(Value, DType)> {
        match self.svars.get(&v) {
            Some(&SVar::Let(x, d)) => Ok((x, d)),
            Some(&SVar::Acc(x, d)) => Ok((self.b.use_var(x), d)),
            None => Err(format!("variable v{v} is not in scope")),
        }
    }

    pub(super) fn constant(&mut self, s: Scalar) -> Value {
        match s {
            Scalar::F32(x) => self.fconst(x),
            Scalar::I32(x) => self.iconst(I32, i64::from(x)),
            Scalar::I64(x) => self.iconst(I64, x),
            Scalar::Bool(x) => self.iconst(I8, i64::from(x)),
        }
    }

    /// A value expression: its value and dtype.
    pub(super) fn vexpr(&mut self, e: &VExpr) -> R<(Value, DType)> {
        Ok(match e {
            VExpr::Load { buf, index } => {
                let d = self.buf_dtype(*buf)?;
                let addr = self.addr(*buf, index)?;
                (self.b.ins().load(clif_type(d)?, mem(), addr, 0), d)
            }
            VExpr::Const(s) => (self.constant(*s), s.dtype()),
            VExpr::Var(v) => self.use_svar(*v)?,
            VExpr::Index(ix) => (self.iexpr(ix)?, DType::I64),
            VExpr::Unary(op, x) => {
                let (x, t) = self.vexpr(x)?;
                (self.unary(*op, x, t)?, t)
            }
            VExpr::Binary(op, a, b) => {
                if self.feat.fma
                    && let Some((x, y, c, form)) = fma_pattern(*op, a, b)
                {
                    let (x, tx) = self.vexpr(x)?;
                    let (y, ty) = self.vexpr(y)?;
                    let (c, tc) = self.vexpr(c)?;
                    if (tx, ty, tc) == (DType::F32, DType::F32, DType::F32) {
                        return Ok((self.fma(x, y, c, form), DType::F32));
                    }
                    // Not floats: the plain operations on the values already computed.
                    let p = self.binary(BinaryOp::Mul, x, tx, y, ty)?;
                    return Ok(match form {
                        FmaForm::SubP => (self.binary(*op, c, tc, p, tx)?, tx),
                        _ => (self.binary(*op, p, tx, c, tc)?, tx),
                    });
                }
                let (a, ta) = self.vexpr(a)?;
                let (b, tb) = self.vexpr(b)?;
                let t = if op.is_comparison() { DType::Bool } else { ta };
                (self.binary(*op, a, ta, b, tb)?, t)
            }
            VExpr::Select(c, a, b) => {
                let (c, tc) = self.vexpr(c)?;
                let (a, ta) = self.vexpr(a)?;
                let (b, tb) = self.vexpr(b)?;
                (self.select(c, tc, a, ta, b, tb)?, ta)
            }
            VExpr::Cast(to, x) => {
                let (x, from) = self.vexpr(x)?;
                (self.cast(*to, x, from)?, *to)
            }
        })
    }

    /// `fma` in the given form; works on scalars and vectors alike.
    pub(super) fn fma(&mut self, x: Value, y: Value, c: Value, form: FmaForm) -> Value {
        match form {
            FmaForm::Add => self.b.ins().fma(x, y, c),
            FmaForm::SubC => {
                let c = self.b.ins().fneg(c);
                self.b.ins().fma(x, y, c)
            }
            FmaForm::SubP => {
                let x = self.b.ins().fneg(x);
                self.b.ins().fma(x, y, c)
            }
        }
    }

    pub(super) fn select(&mut self, c: Value, tc: DType, a: Value, ta: DType, b: Value, tb: DType) -> R<Value> {
        if tc != DType::Bool {
            return Err(format!("select condition must be bool, got {tc}"));
        }
        if ta != tb {
            return Err(format!("select operands differ: {ta} and {tb}"));
        }
        Ok(self.b.ins().select(c, a, b))
    }

    pub(super) fn cast(&mut self, to: DType, x: Value, from: DType) -> R<Value> {
        let to_ty = clif_type(to)?;
        Ok(match (from, to) {
            _ if from == to => x,
            (DType::F32, DType::I32 | DType::I64) => self.b.ins().fcvt_to_sint_sat(to_ty, x),
            (DType::F32, DType::Bool) => {
                let z = self.fconst(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, z) // NaN is true
            }
            (DType::I32, DType::I64) => self.b.ins().sextend(I64, x),
            (DType::I64, DType::I32) => self.b.ins().ireduce(I32, x),
            (DType::I32 | DType::I64, DType::F32) => self.b.ins().fcvt_from_sint(F32, x),
            (DType::I32 | DType::I64, DType::Bool) => self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
            (DType::Bool, DType::I32 | DType::I64) => self.b.ins().uextend(to_ty, x),
            (DType::Bool, DType::F32) => {
                let w = self.b.ins().uextend(I32, x);
                self.b.ins().fcvt_from_sint(F32, w)
            }
            _ => return Err(format!("cannot cast {from} to {to}")),
        })
    }

    pub(super) fn unary(&mut self, op: UnaryOp, x: Value, t: DType) -> R<Value> {
        Ok(match (t, op) {
            (DType::Bool, UnaryOp::Not) => self.b.ins().bxor_imm_s(x, 1),
            (DType::F32, UnaryOp::Neg) => self.b.ins().fneg(x),
            (DType::F32, UnaryOp::Abs) => self.b.ins().fabs(x),
            (DType::F32, UnaryOp::Sqrt) => self.b.ins().sqrt(x),
            (DType::F32, UnaryOp::Rsqrt) => {
                let s = self.b.ins().sqrt(x);
                let one = self.fconst(1.0);
                self.b.ins().fdiv(one, s)
            }
            (DType::F32, UnaryOp::Recip) => {
                let one = self.fconst(1.0);
                self.b.ins().fdiv(one, x)
            }
            (DType::F32, UnaryOp::Floor) => self.b.ins().floor(x),
            (DType::F32, UnaryOp::Ceil) => self.b.ins().ceil(x),
            (DType::F32, UnaryOp::Round) => self.b.ins().nearest(x),
            (DType::F32, UnaryOp::Sign) => {
                let (one, m1, zero) = (self.fconst(1.0), self.fconst(-1.0), self.fconst(0.0));
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let r = self.b.ins().select(lt, m1, x); // ±0 and NaN stay
                self.b.ins().select(gt, one, r)
            }
            (DType::F32, UnaryOp::Exp) if self.feat.poly_math => self.poly_exp(x),
            (DType::F32, UnaryOp::Tanh) if self.feat.poly_math => self.poly_tanh(x),
            (DType::F32, UnaryOp::Sigmoid) if self.feat.poly_math => self.poly_sigmoid(x),
            (DType::F32, UnaryOp::Erf) if self.feat.poly_math => self.poly_erf(x),
            (DType::F32, UnaryOp::Exp) => self.call(Libm::Exp, &[x]),
            (DType::F32, UnaryOp::Log) => self.call(Libm::Log, &[x]),
            (DType::F32, UnaryOp::Tanh) => self.call(Libm::Tanh, &[x]),
            (DType::F32, UnaryOp::Sigmoid) => self.call(Libm::Sigmoid, &[x]),
            (DType::F32, UnaryOp::Erf) => self.call(Libm::Erf, &[x]),
            (DType::F32, UnaryOp::Sin) => self.call(Libm::Sin, &[x]),
            (DType::F32, UnaryOp::Cos) => self.call(Libm::Cos, &[x]),
            (DType::I32 | DType::I64, UnaryOp::Neg) => self.b.ins().ineg(x),
            (DType::I32 | DType::I64, UnaryOp::Abs) => self.b.ins().iabs(x),
            (DType::I32 | DType::I64, UnaryOp::Sign) => {
                let ty = clif_type(t)?;
                let (one, m1, zero) = (self.iconst(ty, 1), self.iconst(ty, -1), self.iconst(ty, 0));
                let gt = self.b.ins().icmp(IntCC::SignedGreaterThan, x, zero);
                let lt = self.b.ins().icmp(IntCC::SignedLessThan, x, zero);
                let r = self.b.ins().select(lt, m1, zero);
                self.b.ins().select(gt, one, r)
            }
            _ => return Err(format!("{op:?} is not defined for {t}")),
        })
    }

    /// `max`/`min` of floats that ignore a NaN operand (as `f32::max`/`f32::min`).
    ///
    /// `a > b ? a : b` (`<` for `min`) is the x86 `maxps`/`minps` pattern, which Cranelift emits
    /// as that one instruction; it gives `b` when either operand is NaN, which is right when `a`
    /// is the NaN, so only a NaN `b` needs a second select. Three instructions, where Cranelift's
    /// NaN-propagating `fmax`/`fmin` and two NaN fixes took about fifteen. Equal operands give
    /// `b` (of `+0` and `-0`, the second).
    pub(super) fn nan_ignoring_minmax(&mut self, max: bool, a: Value, b: Value) -> Value {
        let cc = if max { FloatCC::GreaterThan } else { FloatCC::LessThan };
        let wins = self.b.ins().fcmp(cc, a, b);
        let b_nan = self.b.ins().fcmp(FloatCC::Unordered, b, b);
        if self.b.func.dfg.value_type(a).is_vector() {
            let m = self.bitselect_f(wins, a, b);
            self.bitselect_f(b_nan, a, m)
        } else {
            let m = self.b.ins().select(wins, a, b);
            self.b.ins().select(b_nan, a, m)
        }
    }

    pub(super) fn binary(&mut self, op: BinaryOp, a: Value, ta: DType, b: Value, tb: DType) -> R<Value> {
        if ta != tb {
            return Err(format!("{op:?} operands differ: {ta} and {tb}"));
        }
        let t = ta;
        let undefined = || Err(format!("{op:?} is not defined for {t}"));
        if op.is_comparison() {
            return Ok(match t {
                DType::F32 => self.b.ins().fcmp(float_cc(op), a, b),
                DType::I32 | DType::I64 => self.b.ins().icmp(int_cc(op), a, b),
                DType::Bool if matches!(op, BinaryOp::Eq | BinaryOp::Ne) => self.b.ins().icmp(int_cc(op), a, b),
                _ => return undefined(),
            });
        }
        if op.is_logical() {
            if t != DType::Bool {
                return undefined();
            }
            return Ok(match op {
                BinaryOp::And => self.b.ins().band(a, b),
                BinaryOp::Or => self.b.ins().bor(a, b),
                _ => self.b.ins().bxor(a, b),
            });
        }
        Ok(match t {
            DType::F32 => match op {
                BinaryOp::Add => self.b.ins().fadd(a, b),
                BinaryOp::Sub => self.b.ins().fsub(a, b),
                BinaryOp::Mul => self.b.ins().fmul(a, b),
                BinaryOp::Div => self.b.ins().fdiv(a, b),
                BinaryOp::Rem => self.call(Libm::Rem, &[a, b]),
                BinaryOp::Pow => self.call(Libm::Pow, &[a, b]),
                BinaryOp::Max => self.nan_ignoring_minmax(true, a, b),
                BinaryOp::Min => self.nan_ignoring_minmax(false, a, b),
                _ => return undefined(),
            },
            DType::I32 | DType::I64 => {
                let ty = clif_type(t)?;
                match op {
                    BinaryOp::Add => self.b.ins().iadd(a, b),
                    BinaryOp::Sub => self.b.ins().isub(a, b),
                    BinaryOp::Mul => self.b.ins().imul(a, b),
                    BinaryOp::Div => self.floor_divrem(true, a, b, ty),
                    BinaryOp::Rem => self.floor_divrem(false, a, b, ty),
                    BinaryOp::Pow if t == DType::I64 => self.call(Libm::IPow, &[a, b]),
                    BinaryOp::Pow => {
                        // Wrapping arithmetic commutes with truncation to 32 bits.
                        let a64 = self.b.ins().sextend(I64, a);
                        let b64 = self.b.ins().sextend(I64, b);
                        let p = self.call(Libm::IPow, &[a64, b64]);
                        self.b.ins().ireduce(I32, p)
                    }
                    BinaryOp::Max => self.b.ins().smax(a, b),
                    BinaryOp::Min => self.b.ins().smin(a, b),
                    _ => return undefined(),
                }
            }
            _ => return undefined(),
        })
    }
}

pub(super) fn float_cc(op: BinaryOp) -> FloatCC {
    match op {
        BinaryOp::Eq => FloatCC::Equal,
        BinaryOp::Ne => FloatCC::NotEqual, // unordered or unequal: NaN != x
        BinaryOp::Lt => FloatCC::LessThan,
        BinaryOp::Le => FloatCC::LessThanOrEqual,
        BinaryOp::Gt => FloatCC::GreaterThan,
        _ => FloatCC::GreaterThanOrEqual,
    }
}

fn int_cc(op: BinaryOp) -> IntCC {
    match op {
        BinaryOp::Eq => IntCC::Equal,
        BinaryOp::Ne => IntCC::NotEqual,
        BinaryOp::Lt => IntCC::SignedLessThan,
        BinaryOp::Le => IntCC::SignedLessThanOrEqual,
        BinaryOp::Gt => IntCC::SignedGreaterThan,
        _ => IntCC::SignedGreaterThanOrEqual,
    }
}

/// No buffer is both stored to and loaded from in `body` (so running its iterations four at a
/// time cannot reorder a dependence).
fn no_store_load_overlap(body: &[KStmt]) -> bool {
    fn loads(e: &VExpr, out: &mut Vec<u32>) {
        match e {
            VExpr::Load { buf, .. } => out.push(*buf),
            VExpr::Const(_) | VExpr::Var(_) | VExpr::Index(_) => {}
            VExpr::Unary(_, x) | VExpr::Cast(_, x) => loads(x, out),
            VExpr::Binary(_, a, b) => {
                loads(a, out);
                loads(b, out);
            }
            VExpr::Select(c, a, b) => {
                loads(c, out);
                loads(a, out);
                loads(b, out);
            }
        }
    }
    let (mut stored, mut loaded) = (Vec::new(), Vec::new());
    for s in body {
        match s {
            KStmt::Store { buf, value, .. } => {
                if stored.contains(buf) {
                    return false;
                }
                stored.push(*buf);
                loads(value, &mut loaded);
            }
            KStmt::Let { value, .. } => loads(value, &mut loaded),
            _ => return false,
        }
    }
    !stored.iter().any(|b| loaded.contains(b))
}

fn expect_dtype(want: DType, got: DType, what: impl FnOnce() -> String) -> R<()> {
    if want == got {
        Ok(())
    } else {
        Err(format!("{} declares {want} but computes {got}", what()))
    }
}
