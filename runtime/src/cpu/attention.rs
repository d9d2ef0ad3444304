//! `Step::Attention`: scaled dot-product attention through `mlc_kernels::attention` (blocked
//! online softmax; the score matrix is never built), over strided views of the step's buffers.

use mlc_ir::{BufId, DType, Origin};
use mlc_kernels::attention::{AttentionOpts, MaskRef, Tensor4Mut, Tensor4Ref, attention};

use super::buffers::BufferTable;
use super::exec::Exec;
use super::storage::Storage;
use crate::error::RuntimeError;
use crate::interp::format_origin;

/// The buffers of one attention step.
pub(super) struct AttnBufs {
    pub q: BufId,
    pub k: BufId,
    pub v: BufId,
    pub out: BufId,
    pub bool_mask: Option<BufId>,
    pub additive_mask: Option<BufId>,
}

/// Strides that broadcast a mask of shape `shape` (rank at most 4, right-aligned) to `full`: 0 on
/// size-1 axes; `None` if an axis neither matches nor is 1.
fn broadcast_strides(shape: &[usize], full: [usize; 4]) -> Option<[usize; 4]> {
    if shape.len() > 4 {
        return None;
    }
    let off = 4 - shape.len();
    let mut strides = [0usize; 4];
    let mut stride = 1;
    for ax in (0..shape.len()).rev() {
        let d = shape[ax];
        if d == 1 {
            strides[ax + off] = 0;
        } else if d == full[ax + off] {
            strides[ax + off] = stride;
        } else {
            return None;
        }
        stride *= d;
    }
    Some(strides)
}

fn dims4(s: &[usize]) -> Option<[usize; 4]> {
    s.try_into().ok()
}

impl Exec<'_> {
    /// Runs one `Step::Attention`.
    pub(super) fn attention(
        &self,
        table: &mut BufferTable,
        bufs: &AttnBufs,
        scale: f32,
        causal: bool,
        origin: &Origin,
    ) -> Result<(), RuntimeError> {
        let at = format_origin(origin);
        let bad = |message: String| RuntimeError::Op {
            op: "attention",
            at: at.clone(),
            message,
        };
        let get = |b: BufId| -> Result<Storage, RuntimeError> { Ok(table.get(b)?.clone()) };
        let (sq, sk, sv) = (get(bufs.q)?, get(bufs.k)?, get(bufs.v)?);
        let sm = bufs.bool_mask.map(get).transpose()?;
        let sa = bufs.additive_mask.map(get).transpose()?;
        let shape = |s: &Storage| s.type_of().map(|(_, sh)| sh.to_vec()).unwrap_or_default();
        let (Some(dq), Some(dk), Some(dv)) = (dims4(&shape(&sq)), dims4(&shape(&sk)), dims4(&shape(&sv))) else {
            return Err(bad("q, k and v must have rank 4".into()));
        };
        let [b, h, tq, dh] = dq;
        let [kb, hkv, tk, kdh] = dk;
        let [vb, vh, vt, dvv] = dv;
        let shapes_ok = kb == b
            && vb == b
            && kdh == dh
            && vh == hkv
            && vt == tk
            && ((hkv == 0 && h == 0) || (hkv > 0 && h % hkv == 0))
            && table.shape(bufs.out) == [b, h, tq, dvv];
        if !shapes_ok {
            return Err(bad(format!(
                "shapes disagree: q {dq:?}, k {dk:?}, v {dv:?}, out {:?}",
                table.shape(bufs.out)
            )));
        }
        let full = [b, h, tq, tk];
        let (Some(xq), Some(xk), Some(xv)) = (sq.as_f32(), sk.as_f32(), sv.as_f32()) else {
            return Err(bad("q, k and v must hold f32".into()));
        };
        let bool_mask = match &sm {
            None => None,
            Some(s) => {
                let Some((DType::Bool, ms)) = s.type_of() else {
                    return Err(bad("the boolean mask must hold bool".into()));
                };
                let strides = broadcast_strides(ms, full)
                    .ok_or_else(|| bad(format!("mask {ms:?} does not broadcast to {full:?}")))?;
                let bytes = s.bytes().unwrap_or_default();
                // SAFETY: bool buffers hold one byte per element, 0 or 1 (see `storage`), which
                // are valid `bool`s; the slice lives as long as `s`.
                let data: &[bool] = unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<bool>(), bytes.len()) };
                Some(MaskRef::new(data, strides))
            }
        };
        let additive_mask = match &sa {
            None => None,
            Some(s) => {
                let Some((DType::F32, ms)) = s.type_of() else {
                    return Err(bad("the additive mask must hold f32".into()));
                };
                let strides = broadcast_strides(ms, full)
                    .ok_or_else(|| bad(format!("additive mask {ms:?} does not broadcast to {full:?}")))?;
                Some(MaskRef::new(s.as_f32().unwrap_or_default(), strides))
            }
        };
        // SAFETY: `out` is none of the operands (`prepare` checks), and the layout never overlaps
        // buffers live at the same step; `o` is dropped before this step ends.
        let Some(o) = (unsafe { table.f32_mut(bufs.out) }) else {
            return Err(bad("the output must be f32".into()));
        };
        let opts = AttentionOpts {
            causal,
            bool_mask,
            additive_mask,
            ..AttentionOpts::new(scale)
        };
        attention(
            self.pool,
            self.threads,
            Tensor4Ref::new(xq, dq),
            Tensor4Ref::new(xk, dk),
            Tensor4Ref::new(xv, dv),
            Tensor4Mut::new(o, [b, h, tq, dvv]),
            &opts,
        );
        Ok(())
    }
}
