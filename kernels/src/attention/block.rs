//! One task of the blocked online softmax: a block of up to `BQ` queries of one (batch, head)
//! against every visible block of `BK` keys.

use super::{AttentionOpts, BK, BQ, Isa, MR, NC, OutPtr, Tensor4Ref};

/// Everything a task needs, shared by all threads.
pub(super) struct Problem<'a> {
    pub q: Tensor4Ref<'a>,
    pub k: Tensor4Ref<'a>,
    pub v: Tensor4Ref<'a>,
    pub out: OutPtr,
    pub out_strides: [usize; 4],
    /// Query heads per key/value head.
    pub group: usize,
    pub tq: usize,
    pub tk: usize,
    pub dh: usize,
    pub dv: usize,
    /// `dv` rounded up to a multiple of `NC`.
    pub dvp: usize,
    /// `Tk - Tq`: query `i` sees keys `j <= i + causal_offset` when causal.
    pub causal_offset: isize,
    pub opts: &'a AttentionOpts<'a>,
    pub isa: &'static Isa,
}

/// Per-thread buffers, reused by every task the thread runs.
pub(super) struct Scratch {
    /// The scaled queries, `[rows, dh]` (`rows`: see `new`).
    q: Vec<f32>,
    /// The key block transposed, `[dh, BK]`.
    kt: Vec<f32>,
    /// The value block, `[BK, dvp]` (columns past `dv` stay 0).
    v: Vec<f32>,
    /// Scores, then probabilities, `[rows, BK]`.
    s: Vec<f32>,
    /// Output accumulators, `[rows, dvp]`.
    o: Vec<f32>,
    /// Running maximum of each query row.
    m: [f32; BQ],
    /// Running sum of exponentials of each query row.
    l: [f32; BQ],
    /// Keys of the current block that each row tile computes (a prefix of the block).
    tile_keys: [usize; BQ / MR],
}

impl Scratch {
    /// Buffers for blocks of at most `tq` queries (rounded up to a whole number of row tiles, at
    /// most `BQ`).
    pub fn new(tq: usize, dh: usize, dvp: usize) -> Self {
        let rows = tq.min(BQ).next_multiple_of(MR);
        Scratch {
            q: vec![0.0; rows * dh],
            kt: vec![0.0; dh * BK],
            v: vec![0.0; BK * dvp],
            s: vec![0.0; rows * BK],
            o: vec![0.0; rows * dvp],
            m: [f32::NEG_INFINITY; BQ],
            l: [0.0; BQ],
            tile_keys: [0; BQ / MR],
        }
    }
}

impl Problem<'_> {
    /// The number of keys query `i` may see before the other masks: all of them, or the causal
    /// prefix.
    fn visible_keys(&self, i: usize) -> usize {
        if self.opts.causal {
            (i as isize + self.causal_offset + 1).clamp(0, self.tk as isize) as usize
        } else {
            self.tk
        }
    }

    /// Computes `out[b, h, qb * BQ ..][..BQ]`.
    pub fn run_task(&self, sc: &mut Scratch, b: usize, h: usize, qb: usize) {
        let (dh, dv, dvp) = (self.dh, self.dv, self.dvp);
        let i0 = qb * BQ;
        let nq = BQ.min(self.tq - i0);
        let nq_pad = nq.next_multiple_of(MR);
        let g = h / self.group;
        let scale = self.opts.scale;

        // The scaled query rows, contiguous; padding rows are 0.
        let q = &self.q;
        for r in 0..nq {
            let base = q.offset(b, h, i0 + r, 0);
            let row = &mut sc.q[r * dh..(r + 1) * dh];
            if q.strides[3] == 1 {
                for (x, &y) in row.iter_mut().zip(&q.data[base..base + dh]) {
                    *x = y * scale;
                }
            } else {
                for (d, x) in row.iter_mut().enumerate() {
                    *x = q.data[base + d * q.strides[3]] * scale;
                }
            }
        }
        sc.q[nq * dh..nq_pad * dh].fill(0.0);
        sc.o[..nq_pad * dvp].fill(0.0);
        sc.m.fill(f32::NEG_INFINITY);
        sc.l.fill(0.0);

        let key_padding = self
            .opts
            .key_padding
            .map(|(m, stride)| &m[b * stride..b * stride + self.tk]);
        let key_end = self.visible_keys(i0 + nq - 1);
        for j0 in (0..key_end).step_by(BK) {
            let nk = BK.min(key_end - j0);
            if let Some(kp) = key_padding
                && !kp[j0..j0 + nk].contains(&true)
            {
                continue; // every key of the block is padding
            }
            self.load_keys(sc, b, g, j0, nk);

            // Scores of each row tile, over the keys its last row may see.
            let isa = self.isa;
            for t in 0..nq_pad / MR {
                let last = (t * MR + MR - 1).min(nq - 1);
                let keys = self.visible_keys(i0 + last).saturating_sub(j0).min(nk);
                sc.tile_keys[t] = keys;
                if keys > 0 {
                    (isa.scores)(
                        &sc.q[t * MR * dh..(t + 1) * MR * dh],
                        dh,
                        &sc.kt,
                        keys.next_multiple_of(NC),
                        &mut sc.s[t * MR * BK..(t + 1) * MR * BK],
                    );
                }
            }

            // Masks and the online softmax, row by row: the scores become probabilities relative
            // to the row's new running maximum, and the accumulator is rescaled to it.
            for r in 0..nq_pad {
                let tile_keys = sc.tile_keys[r / MR];
                let row = &mut sc.s[r * BK..r * BK + tile_keys];
                if r >= nq {
                    row.fill(0.0);
                    continue;
                }
                let keys = self.visible_keys(i0 + r).saturating_sub(j0).min(nk);
                self.apply_masks(&mut row[..keys], key_padding, b, h, i0 + r, j0);
                let block_max = if keys > 0 {
                    (isa.rows.max)(&row[..keys])
                } else {
                    f32::NEG_INFINITY
                };
                let m_old = sc.m[r];
                let m_new = m_old.max(block_max);
                if m_new == f32::NEG_INFINITY {
                    row.fill(0.0); // nothing visible yet
                    continue;
                }
                let sum = isa.rows.exp_sum(&mut row[..keys], m_new, &[]).sum;
                row[keys..].fill(0.0);
                if m_new != m_old {
                    let alpha = (m_old - m_new).exp(); // 0 when m_old is -inf
                    sc.l[r] *= alpha;
                    (isa.rows.scale)(&mut sc.o[r * dvp..(r + 1) * dvp], alpha);
                    sc.m[r] = m_new;
                }
                sc.l[r] += sum;
            }

            // Accumulate probabilities @ values.
            for t in 0..nq_pad / MR {
                let keys = sc.tile_keys[t];
                if keys > 0 {
                    (isa.pv)(
                        &sc.s[t * MR * BK..(t + 1) * MR * BK],
                        keys,
                        &sc.v[..keys * dvp],
                        dvp,
                        &mut sc.o[t * MR * dvp..(t + 1) * MR * dvp],
                    );
                }
            }
        }

        // Normalise and store; a row that saw no key gets 0.
        let os = self.out_strides;
        for r in 0..nq {
            let l = sc.l[r];
            let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
            let base = b * os[0] + h * os[1] + (i0 + r) * os[2];
            for (c, &acc) in sc.o[r * dvp..r * dvp + dv].iter().enumerate() {
                let x = if l > 0.0 { acc * inv } else { 0.0 };
                // SAFETY: `base + c * os[3]` is the offset of out[b, h, i0 + r, c], inside the
                // output slice (its span was checked in `Tensor4Mut::from_strides`). No other task
                // writes this element: tasks own distinct (b, h, query block) triples and the view
                // does not overlap; `attention` holds the `&mut` borrow of the slice until every
                // task has finished.
                unsafe { self.out.0.add(base + c * os[3]).write(x) };
            }
        }
    }

    /// Copies keys `j0..j0 + nk` of (b, g) transposed into `kt` (columns up to the next multiple
    /// of `NC` zeroed) and their values into `v`.
    fn load_keys(&self, sc: &mut Scratch, b: usize, g: usize, j0: usize, nk: usize) {
        let (dh, dv, dvp) = (self.dh, self.dv, self.dvp);
        let k = &self.k;
        let ks = k.strides[3];
        if ks == 1 && dh > 0 {
            let base = k.offset(b, g, j0, 0);
            let rs = k.strides[2];
            let len = (nk - 1) * rs + dh;
            (self.isa.transpose_keys)(&k.data[base..base + len], rs, nk, dh, &mut sc.kt);
        } else {
            for j in 0..nk {
                let base = k.offset(b, g, j0 + j, 0);
                for d in 0..dh {
                    sc.kt[d * BK + j] = k.data[base + d * ks];
                }
            }
        }
        let nk_pad = nk.next_multiple_of(NC);
        if nk_pad > nk {
            for d in 0..dh {
                sc.kt[d * BK + nk..d * BK + nk_pad].fill(0.0);
            }
        }
        let v = &self.v;
        let vs = v.strides[3];
        for j in 0..nk {
            let base = v.offset(b, g, j0 + j, 0);
            let row = &mut sc.v[j * dvp..j * dvp + dv];
            if vs == 1 {
                row.copy_from_slice(&v.data[base..base + dv]);
            } else {
                for (c, x) in row.iter_mut().enumerate() {
                    *x = v.data[base + c * vs];
                }
            }
        }
    }

    /// Applies the additive, boolean and key padding masks to the scores of query `i` against
    /// keys `j0..j0 + row.len()`.
    fn apply_masks(&self, row: &mut [f32], key_padding: Option<&[bool]>, b: usize, h: usize, i: usize, j0: usize) {
        if let Some(m) = self.opts.additive_mask {
            let base = m.offset(b, h, i) + j0 * m.strides[3];
            for (j, x) in row.iter_mut().enumerate() {
                *x += m.data[base + j * m.strides[3]];
            }
        }
        if let Some(m) = self.opts.bool_mask {
            let base = m.offset(b, h, i) + j0 * m.strides[3];
            for (j, x) in row.iter_mut().enumerate() {
                if !m.data[base + j * m.strides[3]] {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
        if let Some(kp) = key_padding {
            for (x, &real) in row.iter_mut().zip(&kp[j0..]) {
                if !real {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
    }
}
