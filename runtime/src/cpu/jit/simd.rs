//! SIMD lowering of `vectorize` loops: `F32X4` code for four iterations at a time, then the
//! scalar body for the remaining `extent % 4` iterations.
//!
//! A loop qualifies when its body is only `let`s and stores, and every expression is either
//! *uniform* (independent of the loop variable: computed once per vector step with the scalar
//! code, any dtype or op, and splatted where an `f32` lane value is needed) or *varying* and
//! made of:
//! - `f32` loads whose index moves by exactly 1 per iteration (a load moving by 0 is uniform),
//! - `+ - * /`, `max`/`min` (NaN-ignoring, as in scalar code), `neg`, `abs`, `sqrt`, `rsqrt`,
//!   `recip`, `sign`, `floor`/`ceil`/`round` (where the target has vector rounding), `fma` for
//!   `a*b ± c` (when fusion is on, exactly as the scalar code fuses),
//! - the callouts (`exp`, `log`, `tanh`, `sigmoid`, `erf`, `sin`, `cos`, `pow`, float `rem`),
//!   called once per lane on extracted lanes: no faster by themselves (measured 0-8% better
//!   than the scalar loop), but they no longer keep the arithmetic around them scalar,
//! - comparisons of `f32` (a lane mask), `and`/`or`/`xor`/`not` of masks, `select` by a mask,
//!   casts between `f32` and `bool`,
//!
//! and every store writes `f32` at an index that moves by exactly 1. Each lane computes the same
//! IEEE operations (or the same callout) as the scalar code, so the results are bit-identical to
//! the scalar loop. Anything else (integer or bool stores, accumulators, whose reassociation
//! would change float sums, nested loops, loads that move by other strides) leaves the loop
//! scalar.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32X4, I32, I32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use mlc_ir::{BinaryOp, DType, IExpr, KStmt, UnaryOp, VExpr};

use cranelift_frontend::Variable;

use super::codegen::{FmaForm, Gen, R, SVar, float_cc, fma_pattern, mem};
use super::libm::Libm;

/// Lanes per vector.
const LANES: i64 = 4;

/// What an expression is inside a vectorized loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Independent of the loop variable: a scalar of this dtype.
    Uniform(DType),
    /// Four `f32` lanes.
    F32x4,
    /// Four lane masks (`I32X4`, all ones or zero): a varying `bool`.
    Mask,
}

/// A value inside a vectorized loop.
#[derive(Clone, Copy, Debug)]
enum VVal {
    Uniform(Value, DType),
    F32x4(Value),
    Mask(Value),
}

/// The element stride of `e` per step of variable `v`, if `e` is affine in `v` with a constant
/// coefficient.
fn stride(e: &IExpr, v: u32) -> Option<i64> {
    match e {
        IExpr::Const(_) | IExpr::Dim(_) => Some(0),
        IExpr::Var(x) => Some(i64::from(*x == v)),
        IExpr::Add(a, b) => stride(a, v)?.checked_add(stride(b, v)?),
        IExpr::Mul(a, b) => match (stride(a, v)?, stride(b, v)?) {
            (0, 0) => Some(0),
            (s, 0) => match **b {
                IExpr::Const(c) => s.checked_mul(c),
                _ => None,
            },
            (0, s) => match **a {
                IExpr::Const(c) => s.checked_mul(c),
                _ => None,
            },
            _ => None,
        },
        IExpr::Div(..) | IExpr::Rem(..) => e.independent_of(v).then_some(0),
    }
}

fn vector_unary(op: UnaryOp, round: bool) -> bool {
    match op {
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Recip | UnaryOp::Sign => true,
        UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round => round,
        // Callouts, one call per lane.
        UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Erf | UnaryOp::Sin | UnaryOp::Cos => {
            true
        }
        UnaryOp::Not => false,
    }
}

fn is_f32(c: Class) -> bool {
    matches!(c, Class::F32x4 | Class::Uniform(DType::F32))
}

fn is_mask(c: Class) -> bool {
    matches!(c, Class::Mask | Class::Uniform(DType::Bool))
}

impl Gen<'_, '_> {
    /// Whether the body of loop `var` can run four lanes at a time (see the module docs).
    pub(super) fn can_vectorize(&self, var: u32, body: &[KStmt]) -> bool {
        let mut locals: HashMap<u32, Class> = HashMap::new();
        for s in body {
            match s {
                KStmt::Let { var: v, dtype, value } => {
                    let Some(c) = self.let_class(var, &locals, *dtype, value) else {
                        return false;
                    };
                    locals.insert(*v, c);
                }
                KStmt::Store { buf, index, value } => {
                    if !self.store_vectorizes(var, &locals, *buf, index, value) {
                        return false;
                    }
                }
                KStmt::Loop { .. } | KStmt::Acc { .. } | KStmt::Assign { .. } => return false,
            }
        }
        true
    }

    /// What a `let` of `dtype` computing `value` is in loop `var`, if the vector code can hold it.
    fn let_class(&self, var: u32, locals: &HashMap<u32, Class>, dtype: DType, value: &VExpr) -> Option<Class> {
        let c = self.classify(var, locals, value)?;
        let ok = match c {
            Class::Uniform(d) => d == dtype,
            Class::F32x4 => dtype == DType::F32,
            Class::Mask => dtype == DType::Bool,
        };
        ok.then_some(c)
    }

    /// Whether a store can write four lanes at a time: `f32` lanes into an `f32` buffer at an
    /// index that moves by 1 per iteration.
    fn store_vectorizes(&self, var: u32, locals: &HashMap<u32, Class>, buf: u32, index: &IExpr, value: &VExpr) -> bool {
        let f32_buf = self.k.bufs.get(buf as usize).is_some_and(|b| b.dtype == DType::F32);
        f32_buf && stride(index, var) == Some(1) && self.classify(var, locals, value).is_some_and(is_f32)
    }

    /// The dtype of a uniform expression (errors surface later, in the scalar codegen).
    fn uniform_dtype(&self, locals: &HashMap<u32, Class>, e: &VExpr) -> DType {
        self.k.dtype_of(e, &|v| match locals.get(&v) {
            Some(Class::Uniform(d)) => *d,
            Some(Class::F32x4) => DType::F32,
            Some(Class::Mask) => DType::Bool,
            None => self.svars.get(&v).map_or(DType::F32, |s| s.dtype()),
        })
    }

    fn classify(&self, var: u32, locals: &HashMap<u32, Class>, e: &VExpr) -> Option<Class> {
        let uniform = || Some(Class::Uniform(self.uniform_dtype(locals, e)));
        match e {
            VExpr::Load { buf, index } => {
                let d = self.k.bufs.get(*buf as usize)?.dtype;
                match stride(index, var)? {
                    0 => Some(Class::Uniform(d)),
                    1 if d == DType::F32 => Some(Class::F32x4),
                    _ => None,
                }
            }
            VExpr::Const(s) => Some(Class::Uniform(s.dtype())),
            VExpr::Var(v) => match locals.get(v) {
                Some(c) => Some(*c),
                None => self.svars.get(v).map(|s| Class::Uniform(s.dtype())),
            },
            VExpr::Index(ix) => ix.independent_of(var).then_some(Class::Uniform(DType::I64)),
            VExpr::Unary(op, x) => match self.classify(var, locals, x)? {
                Class::Uniform(_) => uniform(),
                Class::F32x4 => vector_unary(*op, self.feat.vector_round).then_some(Class::F32x4),
                Class::Mask => (*op == UnaryOp::Not).then_some(Class::Mask),
            },
            VExpr::Binary(op, a, b) => {
                let ca = self.classify(var, locals, a)?;
                let cb = self.classify(var, locals, b)?;
                if matches!((ca, cb), (Class::Uniform(_), Class::Uniform(_))) {
                    return uniform();
                }
                let arith = matches!(
                    op,
                    BinaryOp::Add
                        | BinaryOp::Sub
                        | BinaryOp::Mul
                        | BinaryOp::Div
                        | BinaryOp::Max
                        | BinaryOp::Min
                        | BinaryOp::Rem
                        | BinaryOp::Pow
                );
                let compare = op.is_comparison() && is_f32(ca) && is_f32(cb);
                if compare || (op.is_logical() && is_mask(ca) && is_mask(cb)) {
                    Some(Class::Mask)
                } else if arith && is_f32(ca) && is_f32(cb) {
                    if let Some((x, y, c, _)) = fma_pattern(*op, a, b)
                        && self.feat.fma
                    {
                        // The fused form evaluates the product's operands directly.
                        let ok = [x, y, c]
                            .iter()
                            .all(|e| self.classify(var, locals, e).is_some_and(is_f32));
                        return ok.then_some(Class::F32x4);
                    }
                    Some(Class::F32x4)
                } else {
                    None
                }
            }
            VExpr::Select(c, a, b) => {
                let cc = self.classify(var, locals, c)?;
                let ca = self.classify(var, locals, a)?;
                let cb = self.classify(var, locals, b)?;
                match (cc, ca, cb) {
                    (Class::Uniform(_), Class::Uniform(_), Class::Uniform(_)) => uniform(),
                    _ if is_mask(cc) && is_f32(ca) && is_f32(cb) => Some(Class::F32x4),
                    _ if is_mask(cc) && is_mask(ca) && is_mask(cb) => Some(Class::Mask),
                    _ => None,
                }
            }
            VExpr::Cast(to, x) => match (self.classify(var, locals, x)?, to) {
                (Class::Uniform(_), _) => uniform(),
                (Class::F32x4 | Class::Mask, DType::F32) => Some(Class::F32x4),
                (Class::F32x4 | Class::Mask, DType::Bool) => Some(Class::Mask),
                _ => None,
            },
        }
    }

    /// Emits loop `var` over `0..n` as a vector loop plus a scalar tail. The caller checked
    /// [`Self::can_vectorize`].
    pub(super) fn vector_loop(&mut self, var: u32, n: Value, body: &[KStmt]) -> R<()> {
        let zero = self.iconst(cranelift_codegen::ir::types::I64, 0);
        // i + 4 <= n  <=>  i < n - 3
        let bound = self.b.ins().iadd_imm_s(n, -(LANES - 1));
        let rest = self.counted_loop(zero, bound, LANES, |g, i| {
            g.scoped(|g| {
                g.ivars.insert(var, i);
                let mut locals: HashMap<u32, VVal> = HashMap::new();
                for s in body {
                    g.vstmt(var, &mut locals, s)?;
                }
                Ok(())
            })
        })?;
        self.counted_loop(rest, n, 1, |g, i| {
            g.scoped(|g| {
                g.ivars.insert(var, i);
                g.stmts(body)
            })
        })?;
        Ok(())
    }

    fn vstmt(&mut self, var: u32, locals: &mut HashMap<u32, VVal>, s: &KStmt) -> R<()> {
        match s {
            KStmt::Let { var: v, dtype, value } => {
                match self.vexpr_v(var, locals, value)? {
                    VVal::Uniform(x, d) => {
                        if d != *dtype {
                            return Err(format!("let v{v} declares {dtype} but computes {d}"));
                        }
                        locals.remove(v);
                        self.svars.insert(*v, SVar::Let(x, d));
                    }
                    vv => {
                        self.svars.remove(v);
                        locals.insert(*v, vv);
                    }
                }
                Ok(())
            }
            KStmt::Store { buf, index, value } => {
                let vv = self.vexpr_v(var, locals, value)?;
                let x = self.lanes_f32(vv)?;
                // The index moves by 1 per iteration: lanes i..i+4 are contiguous from i's.
                let addr = self.addr(*buf, index)?;
                self.b.ins().store(mem(), x, addr, 0);
                Ok(())
            }
            _ => Err("internal: statement not vectorizable".into()),
        }
    }

    /// Four `f32` lanes: a vector as is, a uniform `f32` splatted.
    fn lanes_f32(&mut self, v: VVal) -> R<Value> {
        match v {
            VVal::F32x4(x) => Ok(x),
            VVal::Uniform(x, DType::F32) => Ok(self.b.ins().splat(F32X4, x)),
            _ => Err(format!("internal: expected f32 lanes, got {v:?}")),
        }
    }

    /// Four lane masks: a mask as is, a uniform bool (0/1) as all-zero/all-one lanes.
    fn lanes_mask(&mut self, v: VVal) -> R<Value> {
        match v {
            VVal::Mask(m) => Ok(m),
            VVal::Uniform(c, DType::Bool) => {
                let w = self.b.ins().uextend(I32, c);
                let m = self.b.ins().ineg(w);
                Ok(self.b.ins().splat(I32X4, m))
            }
            _ => Err(format!("internal: expected a mask, got {v:?}")),
        }
    }

    /// `mask ? x : y` lane by lane, for `F32X4` values and an `I32X4` mask.
    pub(super) fn bitselect_f(&mut self, mask: Value, x: Value, y: Value) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        let m = if self.b.func.dfg.value_type(mask) == ty {
            mask
        } else {
            self.b.ins().bitcast(ty, MemFlagsData::new(), mask)
        };
        self.b.ins().bitselect(m, x, y)
    }

    fn vexpr_v(&mut self, var: u32, locals: &HashMap<u32, VVal>, e: &VExpr) -> R<VVal> {
        Ok(match e {
            VExpr::Load { buf, index } => {
                if stride(index, var) == Some(1) {
                    let addr = self.addr(*buf, index)?;
                    VVal::F32x4(self.b.ins().load(F32X4, mem(), addr, 0))
                } else {
                    let (x, d) = self.vexpr(e)?;
                    VVal::Uniform(x, d)
                }
            }
            VExpr::Var(v) if locals.contains_key(v) => locals[v],
            VExpr::Const(_) | VExpr::Var(_) | VExpr::Index(_) => {
                let (x, d) = self.vexpr(e)?;
                VVal::Uniform(x, d)
            }
            VExpr::Unary(op, x) => match self.vexpr_v(var, locals, x)? {
                VVal::Uniform(x, d) => VVal::Uniform(self.unary(*op, x, d)?, d),
                VVal::F32x4(x) => VVal::F32x4(self.vunary(*op, x)?),
                VVal::Mask(m) if *op == UnaryOp::Not => VVal::Mask(self.b.ins().bnot(m)),
                v => return Err(format!("internal: {op:?} of {v:?}")),
            },
            VExpr::Binary(op, a, b) => {
                if self.feat.fma
                    && let Some((x, y, c, form)) = fma_pattern(*op, a, b)
                {
                    let vx = self.vexpr_v(var, locals, x)?;
                    let vy = self.vexpr_v(var, locals, y)?;
                    let vc = self.vexpr_v(var, locals, c)?;
                    return self.vfma(vx, vy, vc, *op, form);
                }
                let va = self.vexpr_v(var, locals, a)?;
                let vb = self.vexpr_v(var, locals, b)?;
                self.vbinary(*op, va, vb)?
            }
            VExpr::Select(c, a, b) => {
                let vc = self.vexpr_v(var, locals, c)?;
                let va = self.vexpr_v(var, locals, a)?;
                let vb = self.vexpr_v(var, locals, b)?;
                match (vc, va, vb) {
                    (VVal::Uniform(c, tc), VVal::Uniform(a, ta), VVal::Uniform(b, tb)) => {
                        VVal::Uniform(self.select(c, tc, a, ta, b, tb)?, ta)
                    }
                    (_, VVal::Mask(_) | VVal::Uniform(_, DType::Bool), _) => {
                        let m = self.lanes_mask(vc)?;
                        let (a, b) = (self.lanes_mask(va)?, self.lanes_mask(vb)?);
                        VVal::Mask(self.b.ins().bitselect(m, a, b))
                    }
                    _ => {
                        let (a, b) = (self.lanes_f32(va)?, self.lanes_f32(vb)?);
                        match vc {
                            // A scalar condition picks a whole vector.
                            VVal::Uniform(c, DType::Bool) => VVal::F32x4(self.b.ins().select(c, a, b)),
                            _ => {
                                let m = self.lanes_mask(vc)?;
                                VVal::F32x4(self.bitselect_f(m, a, b))
                            }
                        }
                    }
                }
            }
            VExpr::Cast(to, x) => match (self.vexpr_v(var, locals, x)?, to) {
                (VVal::Uniform(x, d), _) => VVal::Uniform(self.cast(*to, x, d)?, *to),
                (v @ VVal::F32x4(_), DType::F32) | (v @ VVal::Mask(_), DType::Bool) => v,
                (VVal::F32x4(x), DType::Bool) => {
                    let z = self.fconst(0.0);
                    let z = self.b.ins().splat(F32X4, z);
                    VVal::Mask(self.b.ins().fcmp(FloatCC::NotEqual, x, z))
                }
                (VVal::Mask(m), DType::F32) => {
                    // all-ones & bits(1.0) = 1.0; zero = +0.0
                    let one = self.fconst(1.0);
                    let one = self.b.ins().splat(F32X4, one);
                    let m = self.b.ins().bitcast(F32X4, MemFlagsData::new(), m);
                    VVal::F32x4(self.b.ins().band(m, one))
                }
                (v, _) => return Err(format!("internal: cast of {v:?} to {to}")),
            },
        })
    }

    fn vfma(&mut self, vx: VVal, vy: VVal, vc: VVal, op: BinaryOp, form: FmaForm) -> R<VVal> {
        if let (VVal::Uniform(x, tx), VVal::Uniform(y, ty), VVal::Uniform(c, tc)) = (vx, vy, vc) {
            // All uniform: the scalar path's exact choice (fused for f32).
            if (tx, ty, tc) == (DType::F32, DType::F32, DType::F32) {
                return Ok(VVal::Uniform(self.fma(x, y, c, form), DType::F32));
            }
            let p = self.binary(BinaryOp::Mul, x, tx, y, ty)?;
            let r = match form {
                FmaForm::SubP => self.binary(op, c, tc, p, tx)?,
                _ => self.binary(op, p, tx, c, tc)?,
            };
            return Ok(VVal::Uniform(r, tx));
        }
        let (x, y, c) = (self.lanes_f32(vx)?, self.lanes_f32(vy)?, self.lanes_f32(vc)?);
        Ok(VVal::F32x4(self.fma(x, y, c, form)))
    }

    fn vunary(&mut self, op: UnaryOp, x: Value) -> R<Value> {
        let splat = |g: &mut Self, v: f32| {
            let s = g.fconst(v);
            g.b.ins().splat(F32X4, s)
        };
        Ok(match op {
            UnaryOp::Neg => self.b.ins().fneg(x),
            UnaryOp::Abs => self.b.ins().fabs(x),
            UnaryOp::Sqrt => self.b.ins().sqrt(x),
            UnaryOp::Rsqrt => {
                let s = self.b.ins().sqrt(x);
                let one = splat(self, 1.0);
                self.b.ins().fdiv(one, s)
            }
            UnaryOp::Recip => {
                let one = splat(self, 1.0);
                self.b.ins().fdiv(one, x)
            }
            UnaryOp::Floor => self.b.ins().floor(x),
            UnaryOp::Ceil => self.b.ins().ceil(x),
            UnaryOp::Round => self.b.ins().nearest(x),
            UnaryOp::Sign => {
                let (one, m1, zero) = (splat(self, 1.0), splat(self, -1.0), splat(self, 0.0));
                let gt = self.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
                let lt = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                let r = self.bitselect_f(lt, m1, x);
                self.bitselect_f(gt, one, r)
            }
            UnaryOp::Exp if self.feat.poly_math => self.poly_exp(x),
            UnaryOp::Tanh if self.feat.poly_math => self.poly_tanh(x),
            UnaryOp::Sigmoid if self.feat.poly_math => self.poly_sigmoid(x),
            UnaryOp::Erf if self.feat.poly_math => self.poly_erf(x),
            UnaryOp::Exp => self.lanewise(Libm::Exp, &[x]),
            UnaryOp::Log => self.lanewise(Libm::Log, &[x]),
            UnaryOp::Tanh => self.lanewise(Libm::Tanh, &[x]),
            UnaryOp::Sigmoid => self.lanewise(Libm::Sigmoid, &[x]),
            UnaryOp::Erf => self.lanewise(Libm::Erf, &[x]),
            UnaryOp::Sin => self.lanewise(Libm::Sin, &[x]),
            UnaryOp::Cos => self.lanewise(Libm::Cos, &[x]),
            UnaryOp::Not => return Err(format!("internal: {op:?} has no vector form")),
        })
    }

    /// A callout applied lane by lane: the same calls as the scalar code, so the same bits.
    fn lanewise(&mut self, f: Libm, args: &[Value]) -> Value {
        let mut out = args[0];
        for lane in 0..LANES as u8 {
            let xs: Vec<Value> = args.iter().map(|&a| self.b.ins().extractlane(a, lane)).collect();
            let r = self.call(f, &xs);
            out = self.b.ins().insertlane(out, r, lane);
        }
        out
    }

    fn vbinary(&mut self, op: BinaryOp, va: VVal, vb: VVal) -> R<VVal> {
        if let (VVal::Uniform(a, ta), VVal::Uniform(b, tb)) = (va, vb) {
            let t = if op.is_comparison() { DType::Bool } else { ta };
            return Ok(VVal::Uniform(self.binary(op, a, ta, b, tb)?, t));
        }
        if op.is_logical() {
            let (a, b) = (self.lanes_mask(va)?, self.lanes_mask(vb)?);
            return Ok(VVal::Mask(match op {
                BinaryOp::And => self.b.ins().band(a, b),
                BinaryOp::Or => self.b.ins().bor(a, b),
                _ => self.b.ins().bxor(a, b),
            }));
        }
        let (a, b) = (self.lanes_f32(va)?, self.lanes_f32(vb)?);
        if op.is_comparison() {
            return Ok(VVal::Mask(self.b.ins().fcmp(float_cc(op), a, b)));
        }
        Ok(VVal::F32x4(match op {
            BinaryOp::Add => self.b.ins().fadd(a, b),
            BinaryOp::Sub => self.b.ins().fsub(a, b),
            BinaryOp::Mul => self.b.ins().fmul(a, b),
            BinaryOp::Div => self.b.ins().fdiv(a, b),
            BinaryOp::Max => self.nan_ignoring_minmax(true, a, b),
            BinaryOp::Min => self.nan_ignoring_minmax(false, a, b),
            BinaryOp::Rem => self.lanewise(Libm::Rem, &[a, b]),
            BinaryOp::Pow => self.lanewise(Libm::Pow, &[a, b]),
            _ => return Err(format!("internal: {op:?} has no vector form")),
        }))
    }
}

/// Whether `e` reads any of the variables `vs`.
fn mentions(e: &VExpr, vs: &[u32]) -> bool {
    match e {
        VExpr::Var(v) => vs.contains(v),
        VExpr::Load { .. } | VExpr::Const(_) | VExpr::Index(_) => false,
        VExpr::Unary(_, x) | VExpr::Cast(_, x) => mentions(x, vs),
        VExpr::Binary(_, a, b) => mentions(a, vs) || mentions(b, vs),
        VExpr::Select(c, a, b) => mentions(c, vs) || mentions(a, vs) || mentions(b, vs),
    }
}

/// The operand of `acc = acc op e` (or `e op acc`) other than the accumulator `acc`.
fn reduction_operand(acc: u32, value: &VExpr) -> Option<(BinaryOp, &VExpr)> {
    let VExpr::Binary(op, a, b) = value else {
        return None;
    };
    if !matches!(op, BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min) {
        return None;
    }
    match (&**a, &**b) {
        (VExpr::Var(v), e) if *v == acc => Some((*op, e)),
        (e, VExpr::Var(v)) if *v == acc => Some((*op, e)),
        _ => None,
    }
}

impl Gen<'_, '_> {
    /// If loop `var` is a reduction that can run four lanes at a time: its body is only `let`s
    /// and stores (vectorizable, as in [`Self::can_vectorize`]) and assignments `acc = acc op e`
    /// to `f32` accumulators declared outside the loop, each assigned once, `op` in
    /// add/mul/max/min, no accumulator read anywhere else in the body. Returns the accumulators and their ops.
    pub(super) fn reduction_accs(&self, var: u32, body: &[KStmt]) -> Option<Vec<(u32, BinaryOp)>> {
        if !self.feat.reductions {
            return None;
        }
        let mut accs: Vec<(u32, BinaryOp)> = Vec::new();
        for s in body {
            if let KStmt::Assign { var: a, value } = s {
                if !matches!(self.svars.get(a), Some(SVar::Acc(_, DType::F32))) || accs.iter().any(|(x, _)| x == a) {
                    return None;
                }
                let (op, _) = reduction_operand(*a, value)?;
                accs.push((*a, op));
            }
        }
        if accs.is_empty() {
            return None;
        }
        let ids: Vec<u32> = accs.iter().map(|(a, _)| *a).collect();
        let mut locals: HashMap<u32, Class> = HashMap::new();
        for s in body {
            match s {
                KStmt::Let { var: v, dtype, value } => {
                    if ids.contains(v) || mentions(value, &ids) {
                        return None;
                    }
                    let c = self.let_class(var, &locals, *dtype, value)?;
                    locals.insert(*v, c);
                }
                KStmt::Assign { var: a, value } => {
                    let (_, e) = reduction_operand(*a, value)?;
                    if mentions(e, &ids) || !self.classify(var, &locals, e).is_some_and(is_f32) {
                        return None;
                    }
                }
                KStmt::Store { buf, index, value } => {
                    // A stored term (see `mlc_ir::kernel::reuse_reduction_terms`).
                    if mentions(value, &ids) || !self.store_vectorizes(var, &locals, *buf, index, value) {
                        return None;
                    }
                }
                _ => return None,
            }
        }
        Some(accs)
    }

    /// The identity of a reduction op: `max`/`min` ignore NaN, so NaN is theirs.
    fn identity(op: BinaryOp) -> f32 {
        match op {
            BinaryOp::Add => -0.0,
            BinaryOp::Mul => 1.0,
            _ => f32::NAN,
        }
    }

    fn reduce_op(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        match op {
            BinaryOp::Add => self.b.ins().fadd(a, b),
            BinaryOp::Mul => self.b.ins().fmul(a, b),
            BinaryOp::Max => self.nan_ignoring_minmax(true, a, b),
            _ => self.nan_ignoring_minmax(false, a, b),
        }
    }

    /// Emits reduction loop `var` over `0..n` (checked by [`Self::reduction_accs`]): two sets of
    /// `F32X4` partial accumulators from the identity, eight iterations at a time (two
    /// independent chains, so the loop is not bound by the latency of one add or FMA), then four
    /// at a time into the first set; the sets and lanes are combined pairwise into the
    /// accumulator afterwards, then the scalar body runs the tail.
    pub(super) fn reduction_loop(&mut self, var: u32, n: Value, body: &[KStmt], accs: &[(u32, BinaryOp)]) -> R<()> {
        let mut sets: [HashMap<u32, (Variable, BinaryOp)>; 2] = [HashMap::new(), HashMap::new()];
        for set in &mut sets {
            for &(a, op) in accs {
                let p = self.b.declare_var(F32X4);
                let id = self.fconst(Self::identity(op));
                let id = self.b.ins().splat(F32X4, id);
                self.b.def_var(p, id);
                set.insert(a, (p, op));
            }
        }
        let zero = self.iconst(cranelift_codegen::ir::types::I64, 0);
        let bound8 = self.b.ins().iadd_imm_s(n, -(2 * LANES - 1));
        let rest8 = self.counted_loop(zero, bound8, 2 * LANES, |g, i| {
            g.reduction_body(var, i, body, &sets[0])?;
            let i4 = g.b.ins().iadd_imm_s(i, LANES);
            g.reduction_body(var, i4, body, &sets[1])
        })?;
        let bound4 = self.b.ins().iadd_imm_s(n, -(LANES - 1));
        let rest = self.counted_loop(rest8, bound4, LANES, |g, i| g.reduction_body(var, i, body, &sets[0]))?;
        for &(a, op) in accs {
            let (p0, _) = sets[0][&a];
            let (p1, _) = sets[1][&a];
            let Some(&SVar::Acc(x, _)) = self.svars.get(&a) else {
                return Err(format!("internal: v{a} is not an accumulator"));
            };
            let (v0, v1) = (self.b.use_var(p0), self.b.use_var(p1));
            let v = self.reduce_op(op, v0, v1);
            let l: Vec<Value> = (0..LANES as u8).map(|k| self.b.ins().extractlane(v, k)).collect();
            let h01 = self.reduce_op(op, l[0], l[1]);
            let h23 = self.reduce_op(op, l[2], l[3]);
            let h = self.reduce_op(op, h01, h23);
            let a0 = self.b.use_var(x);
            let r = self.reduce_op(op, a0, h);
            self.b.def_var(x, r);
        }
        self.counted_loop(rest, n, 1, |g, i| {
            g.scoped(|g| {
                g.ivars.insert(var, i);
                g.stmts(body)
            })
        })?;
        Ok(())
    }

    /// One four-lane step of a reduction loop at index `i`, into the partial accumulators `parts`.
    fn reduction_body(
        &mut self,
        var: u32,
        i: Value,
        body: &[KStmt],
        parts: &HashMap<u32, (Variable, BinaryOp)>,
    ) -> R<()> {
        self.scoped(|g| {
            g.ivars.insert(var, i);
            let mut locals: HashMap<u32, VVal> = HashMap::new();
            for s in body {
                match s {
                    KStmt::Assign { var: a, value } => {
                        let (p, op) = parts[a];
                        let (_, e) = reduction_operand(*a, value).ok_or("internal: not a reduction")?;
                        let acc = g.b.use_var(p);
                        let next = match e {
                            VExpr::Binary(BinaryOp::Mul, x, y) if op == BinaryOp::Add && g.feat.fma => {
                                // As the scalar code fuses `acc + x*y`.
                                let vx = g.vexpr_v(var, &locals, x)?;
                                let vy = g.vexpr_v(var, &locals, y)?;
                                let (x, y) = (g.lanes_f32(vx)?, g.lanes_f32(vy)?);
                                g.b.ins().fma(x, y, acc)
                            }
                            _ => {
                                let ve = g.vexpr_v(var, &locals, e)?;
                                let x = g.lanes_f32(ve)?;
                                g.reduce_op(op, acc, x)
                            }
                        };
                        g.b.def_var(p, next);
                    }
                    _ => g.vstmt(var, &mut locals, s)?,
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides() {
        let v = || IExpr::Var(1);
        let row = IExpr::Var(0) * IExpr::Dim(0);
        assert_eq!(stride(&(row.clone() + v()), 1), Some(1));
        assert_eq!(stride(&row, 1), Some(0));
        assert_eq!(stride(&(v() * IExpr::Const(3)), 1), Some(3));
        assert_eq!(stride(&(v() * IExpr::Dim(0)), 1), None);
        assert_eq!(stride(&(v() / IExpr::Const(2)), 1), None);
        assert_eq!(stride(&(IExpr::Var(0) / IExpr::Const(2)), 1), Some(0));
    }
}
