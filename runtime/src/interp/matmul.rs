//! Batched matrix product.

use mlc_ir::DType;

use crate::error::RuntimeError;
use crate::tensor::{Tensor, shape_numel};

use super::NodeCx;
use super::layout::{broadcast, broadcast_map};

/// `[..., M, K] @ [..., K, N]` with numpy-broadcast batch axes. Floats accumulate in `f64` in
/// order of `k` and round once; integers wrap.
pub fn matmul(cx: &NodeCx, a: &Tensor, b: &Tensor) -> Result<Tensor, RuntimeError> {
    let bad = |why: &str| cx.err(format!("{why}: {} @ {}", a.type_string(), b.type_string()));
    if a.rank() < 2 || b.rank() < 2 || a.dtype() != b.dtype() || a.dtype() == DType::Bool {
        return Err(bad("needs two numeric tensors of rank >= 2 and one dtype"));
    }
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    if k != k2 {
        return Err(bad("inner dimensions differ"));
    }
    let batch = broadcast(cx, &[&a.shape()[..ra - 2], &b.shape()[..rb - 2]])?;
    let mut shape = batch.clone();
    shape.extend([m, n]);
    cx.check_size(&shape)?;
    let ma = broadcast_map(&a.shape()[..ra - 2], &batch);
    let mb = broadcast_map(&b.shape()[..rb - 2], &batch);
    let total = shape_numel(&shape);
    let d = a.dtype();
    if d.is_float() {
        let (x, y) = (a.to_f64_vec(), b.to_f64_vec());
        let mut out = Vec::with_capacity(total);
        for (&ba, &bb) in ma.iter().zip(&mb) {
            let (xa, yb) = (&x[ba * m * k..(ba + 1) * m * k], &y[bb * k * n..(bb + 1) * k * n]);
            for i in 0..m {
                for j in 0..n {
                    out.push((0..k).fold(0.0, |s, p| s + xa[i * k + p] * yb[p * n + j]));
                }
            }
        }
        Ok(Tensor::from_f64_as(d, &shape, &out))
    } else {
        let (x, y) = (a.to_i64_vec(), b.to_i64_vec());
        let mut out = Vec::with_capacity(total);
        for (&ba, &bb) in ma.iter().zip(&mb) {
            let (xa, yb) = (&x[ba * m * k..(ba + 1) * m * k], &y[bb * k * n..(bb + 1) * k * n]);
            for i in 0..m {
                for j in 0..n {
                    let dot = (0..k).fold(0i64, |s, p| s.wrapping_add(xa[i * k + p].wrapping_mul(yb[p * n + j])));
                    out.push(dot);
                }
            }
        }
        Ok(Tensor::from_i64_as(d, &shape, out))
    }
}
