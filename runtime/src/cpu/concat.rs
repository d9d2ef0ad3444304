//! `concat` steps: each input's rows copied straight into the output's place.
//!
//! Through the reference op, a concatenation copied each input out of the arena into a host
//! tensor, built the result in a fresh tensor and kept that outside the arena: three copies and
//! three allocations for what is one copy. Decoding steps concatenate every layer's cached keys
//! and values with the new position's, so that was a measurable part of a token's time.

use mlc_ir::BufId;

use super::buffers::BufferTable;
use super::exec::Exec;
use crate::error::RuntimeError;

impl Exec<'_> {
    /// Writes the concatenation of `inputs` along `axis` into `out`. `Ok(false)` (nothing
    /// written) when the operands are not a well-typed concatenation, which the reference op
    /// then reports.
    pub(super) fn concat(
        &self,
        table: &mut BufferTable,
        axis: usize,
        inputs: &[BufId],
        out: BufId,
    ) -> Result<bool, RuntimeError> {
        let shape = table.shape(out);
        let dtype = table.ty(out).dtype;
        if axis >= shape.len() || inputs.contains(&out) {
            return Ok(false);
        }
        let elem = dtype.size_bytes();
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product::<usize>() * elem;
        // Each input's block per outer index, in bytes, and the input's bytes.
        let mut parts = Vec::with_capacity(inputs.len());
        let mut along = 0;
        for &b in inputs {
            let s = table.get(b)?;
            let Some((d, sh)) = s.type_of() else {
                return Ok(false);
            };
            let same_sides =
                sh.len() == shape.len() && sh[..axis] == shape[..axis] && sh[axis + 1..] == shape[axis + 1..];
            if d != dtype || !same_sides {
                return Ok(false);
            }
            along += sh[axis];
            parts.push((table.read_ptr(b)? as *const u8, sh[axis] * inner));
        }
        if along != shape[axis] {
            return Ok(false);
        }
        let row = along * inner;
        let dst = table.write_ptr(out);
        for o in 0..outer {
            let mut at = o * row;
            for &(src, len) in &parts {
                // SAFETY: input block `o` is `len` bytes inside that input (`outer` blocks of
                // `len`), output block `o` holds `row` bytes from `o * row`, of which these
                // are the next `len`; the output's place overlaps no input live at this step
                // (the arena layout), and `write_ptr` changed only the output's slot, so the
                // inputs' addresses are still theirs.
                unsafe { std::ptr::copy_nonoverlapping(src.add(o * len), dst.add(at), len) };
                at += len;
            }
        }
        Ok(true)
    }
}
