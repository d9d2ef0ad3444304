//! `Step::MatMul`: batched matrix products with broadcast batch axes and optionally
//! transposed right operands.
//!
//! `f32` products run on the SGEMM of `mlc-kernels` (over the session's thread pool, batch axes
//! as strides, 0 where an operand broadcasts, a transposed `B` read in place). Other dtypes go
//! through the reference implementation.

use std::sync::Arc;

use mlc_ir::{Activation, BufId, BufKind, DType, Dim, MatMulEpilogue, Op, Origin, TensorType};
use mlc_kernels::gemm::{SKINNY_M, quantized_pays_off};
use mlc_kernels::{
    BatchMatMut, BatchMatRef, Epilogue, GemmOpts, MatMut, MatRef, Residual, gemm, gemm_batched, gemm_prepacked,
    gemm_quantized,
};

use super::buffers::BufferTable;
use super::exec::Exec;
use super::storage::Storage;
use crate::error::RuntimeError;
use crate::interp::{eval_op, format_origin};

/// The batch, `m`, `k`, `n` of `a @ b` (`b` read as `[..., N, K]` when transposed), and the
/// broadcast batch shape; `Err` says why the shapes do not multiply.
pub struct Dims {
    pub batch: Vec<usize>,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

pub fn product_dims(a: &[usize], b: &[usize], b_transposed: bool) -> Result<Dims, String> {
    let (ra, rb) = (a.len(), b.len());
    if ra < 2 || rb < 2 {
        return Err("needs operands of rank >= 2".into());
    }
    let (m, k) = (a[ra - 2], a[ra - 1]);
    let (k2, n) = if b_transposed {
        (b[rb - 1], b[rb - 2])
    } else {
        (b[rb - 2], b[rb - 1])
    };
    if k != k2 {
        return Err("inner dimensions differ".into());
    }
    let (ba, bb) = (&a[..ra - 2], &b[..rb - 2]);
    let rank = ba.len().max(bb.len());
    let mut batch = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = (i + ba.len()).checked_sub(rank).map_or(1, |j| ba[j]);
        let db = (i + bb.len()).checked_sub(rank).map_or(1, |j| bb[j]);
        batch.push(match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err("batch axes do not broadcast".into()),
        });
    }
    Ok(Dims { batch, m, k, n })
}

/// Element strides of an operand's batch axes `shape` (right-aligned) over the broadcast
/// `batch`, for matrices of `mat` elements: 0 where the operand broadcasts.
fn batch_strides(shape: &[usize], batch: &[usize], mat: usize) -> Vec<usize> {
    let off = batch.len() - shape.len();
    let mut strides = vec![0; batch.len()];
    let mut stride = mat;
    for ax in (off..batch.len()).rev() {
        let d = shape[ax - off];
        strides[ax] = if d == 1 { 0 } else { stride };
        stride *= d;
    }
    strides
}

/// The kernels' activation of a plan's.
fn activation(a: Activation) -> mlc_kernels::Activation {
    match a {
        Activation::None => mlc_kernels::Activation::None,
        Activation::GeluErf => mlc_kernels::Activation::GeluErf,
        Activation::Silu => mlc_kernels::Activation::Silu,
        Activation::Tanh => mlc_kernels::Activation::Tanh,
        Activation::Sigmoid => mlc_kernels::Activation::Sigmoid,
    }
}

/// `f32[2, 3]`-style text of a buffer's contents.
fn type_text(s: &Storage) -> String {
    s.type_of()
        .map_or_else(|| "empty".into(), |(d, sh)| format!("{d}{sh:?}"))
}

impl Exec<'_> {
    /// Runs one `Step::MatMul`.
    pub(super) fn matmul(
        &self,
        table: &mut BufferTable,
        (a, b, out): (BufId, BufId, BufId),
        b_transposed: bool,
        epilogue: &MatMulEpilogue,
        origin: &Origin,
    ) -> Result<(), RuntimeError> {
        let at = format_origin(origin);
        let (sa, sb) = (table.get(a)?.clone(), table.get(b)?.clone());
        let ((da, shape_a), (db, shape_b)) = match (sa.type_of(), sb.type_of()) {
            (Some(x), Some(y)) => (x, y),
            _ => unreachable!("`get` refuses empty slots"),
        };
        let bad = |why: String| RuntimeError::Op {
            op: "matmul",
            at: at.clone(),
            message: format!(
                "{why}: {da}{shape_a:?} @ {db}{shape_b:?}{}",
                if b_transposed { "ᵀ" } else { "" }
            ),
        };
        if da != DType::F32 || db != DType::F32 {
            if !epilogue.is_identity() {
                return Err(bad("a fused epilogue needs f32 operands".into()));
            }
            return self.matmul_reference(table, (a, b, out), (sa, sb), b_transposed, origin);
        }
        // The epilogue's operands, shared before the output is borrowed for writing.
        let bias_s = epilogue.bias.map(|x| table.get(x).cloned()).transpose()?;
        let residual_s = epilogue.residual.map(|x| table.get(x).cloned()).transpose()?;
        let d = product_dims(shape_a, shape_b, b_transposed).map_err(bad)?;
        let mut shape = d.batch.clone();
        shape.extend([d.m, d.n]);
        if shape != table.shape(out) {
            return Err(RuntimeError::ResultType {
                op: "matmul",
                at,
                index: 0,
                expected: table.declared(out),
                found: format!("f32{shape:?}"),
            });
        }
        let (m, k, n) = (d.m, d.k, d.n);
        let rows = d.batch.iter().product::<usize>() * m;
        let plan = table.plan();
        // A long product with a weight: one `[batch * M, K]` product, with the weight packed
        // once for the model from its second use on (`Weights::packed`). The path depends on
        // the shapes only, so the first call (packing `B` itself) and later ones (prepacked)
        // run the same blocked kernels on the same `K` blocks: the same bits every run.
        let weight = match &plan.bufs[b as usize].kind {
            BufKind::Param(name) if rows > SKINNY_M && shape_b.len() == 2 => Some(name),
            _ => None,
        };
        let packed = weight.and_then(|name| self.weights.packed(name, b_transposed));
        // A few rows times a Linear weight with a block-quantised copy: read the blocks, where
        // that beats the f32 weights (`quantized_pays_off`).
        let quantized = match &plan.bufs[b as usize].kind {
            BufKind::Param(name) if quantized_pays_off(rows, k) && b_transposed && shape_b.len() == 2 => {
                self.weights.quantized(name).filter(|q| q.cols() == k && q.rows() == n)
            }
            _ => None,
        };
        let sa_batch = batch_strides(&shape_a[..shape_a.len() - 2], &d.batch, m * k);
        let sb_batch = batch_strides(&shape_b[..shape_b.len() - 2], &d.batch, k * n);
        let sc_batch = batch_strides(&d.batch, &d.batch, m * n);
        // SAFETY: `out` is neither operand (`prepare` checks), and the layout never overlaps
        // buffers live at the same step; `o` is dropped before this step ends.
        let Some(o) = (unsafe { table.f32_mut(out) }) else {
            unreachable!("the output buffer has the result's dtype, f32");
        };
        let (Some(xa), Some(xb)) = (sa.as_f32(), sb.as_f32()) else {
            unreachable!("both operands hold f32");
        };
        let bias = match &bias_s {
            Some(s) => Some(
                s.as_f32()
                    .filter(|v| v.len() == n)
                    .ok_or_else(|| bad(format!("the epilogue's bias is {}, not f32[{n}]", type_text(s))))?,
            ),
            None => None,
        };
        let residual = match &residual_s {
            Some(s) => Some(
                s.as_f32()
                    .filter(|v| v.len() == rows * n)
                    .ok_or_else(|| bad(format!("the epilogue's residual is {}, not f32{shape:?}", type_text(s))))?,
            ),
            None => None,
        };
        if o.is_empty() || k == 0 {
            // Nothing to compute, or a sum over nothing: the product is zero.
            let act = activation(epilogue.activation);
            for (i, x) in o.iter_mut().enumerate() {
                let t = bias.map_or(0.0, |b| b[i % n]);
                *x = act.apply(t) + residual.map_or(0.0, |r| r[i]);
            }
            return Ok(());
        }
        let epilogue_opts = |batch_strides| GemmOpts {
            epilogue: Epilogue {
                scale: None,
                bias,
                activation: activation(epilogue.activation),
                residual: residual.map(|data| Residual {
                    data,
                    ld: n,
                    batch_strides,
                }),
            },
            ..GemmOpts::default()
        };
        if let Some(q) = quantized {
            let a = MatRef::new(xa, rows, k, k);
            let c = MatMut::new(o, rows, n, n);
            gemm_quantized(self.pool, a, q, c, &epilogue_opts(&[]));
            return Ok(());
        }
        if weight.is_some() {
            let a = MatRef::new(xa, rows, k, k);
            let c = MatMut::new(o, rows, n, n);
            match packed.filter(|p| p.k() == k && p.n() == n) {
                Some(packed) => gemm_prepacked(self.pool, a, &packed, c, &epilogue_opts(&[])),
                None if b_transposed => {
                    let b = MatRef::transposed(xb, k, n, k);
                    gemm(self.pool, a, b, c, &epilogue_opts(&[]));
                }
                None => gemm(self.pool, a, MatRef::new(xb, k, n, n), c, &epilogue_opts(&[])),
            }
            return Ok(());
        }
        let a = BatchMatRef::contiguous(xa, m, k, &sa_batch);
        let b = if b_transposed {
            // `b` holds `[..., N, K]`: element (p, j) of the `[K, N]` operand is at `j * K + p`.
            BatchMatRef {
                data: xb,
                rows: k,
                cols: n,
                row_stride: 1,
                col_stride: k,
                batch_strides: &sb_batch,
            }
        } else {
            BatchMatRef::contiguous(xb, k, n, &sb_batch)
        };
        let c = BatchMatMut {
            data: o,
            rows: m,
            cols: n,
            ld: n,
            batch_strides: &sc_batch,
        };
        gemm_batched(self.pool, &d.batch, a, b, c, &epilogue_opts(&sc_batch));
        Ok(())
    }

    /// A product of non-`f32` operands, through the reference implementation.
    fn matmul_reference(
        &self,
        table: &mut BufferTable,
        (_, _, out): (BufId, BufId, BufId),
        (sa, sb): (Storage, Storage),
        b_transposed: bool,
        origin: &Origin,
    ) -> Result<(), RuntimeError> {
        let (Some(ta), Some(mut tb)) = (sa.to_tensor(), sb.to_tensor()) else {
            unreachable!("`get` refuses empty slots");
        };
        if b_transposed {
            let r = tb.rank();
            if r < 2 {
                return Err(RuntimeError::Op {
                    op: "matmul",
                    at: format_origin(origin),
                    message: format!("needs operands of rank >= 2, got {}", tb.type_string()),
                });
            }
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 2, r - 1);
            let mut shape: Vec<Dim> = tb.shape().iter().map(|&d| Dim::c(d as i64)).collect();
            shape.swap(r - 2, r - 1);
            let ty = TensorType::new(tb.dtype(), shape);
            let t = eval_op(&Op::Permute(perm), origin, &[tb], &[ty], self.bindings, self.opts)?;
            tb = Arc::new(
                t.into_iter()
                    .next()
                    .unwrap_or_else(|| unreachable!("permute has one result")),
            );
        }
        let out_ty = table.ty(out).clone();
        let r = eval_op(&Op::MatMul, origin, &[ta, tb], &[out_ty], self.bindings, self.opts)?;
        for t in r {
            table
                .set(out, Storage::Host(Arc::new(t)))
                .map_err(|found| self.result_err("matmul", origin, table, out, found))?;
        }
        Ok(())
    }
}
