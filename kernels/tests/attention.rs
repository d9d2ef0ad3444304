//! The blocked attention kernel against a naive f64 reference that materialises the scores and
//! follows `std.attention.attention` (dsl/std/attention.dsl) step by step.

use mlc_kernels::ThreadPool;
use mlc_kernels::attention::{
    AttentionOpts, AttentionVariant, MaskRef, Tensor4Mut, Tensor4Ref, attention, contiguous_strides,
};

const RTOL: f64 = 1e-5;

fn rand_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn rand_bools(len: usize, seed: u64, p_true: f32) -> Vec<bool> {
    rand_vec(len, seed).iter().map(|&x| (x + 1.0) / 2.0 < p_true).collect()
}

fn variants() -> Vec<AttentionVariant> {
    [AttentionVariant::Avx2Fma, AttentionVariant::Portable]
        .into_iter()
        .filter(|v| v.is_supported())
        .collect()
}

/// A problem: dims, masks (stored with their strides) and the inputs, all contiguous unless a test
/// builds its own views.
#[derive(Clone, Debug)]
struct Case {
    b: usize,
    h: usize,
    hkv: usize,
    tq: usize,
    tk: usize,
    dh: usize,
    dv: usize,
    causal: bool,
    scale: f32,
    /// `[B, Tk]`, batch stride Tk.
    key_padding: Option<Vec<bool>>,
    bool_mask: Option<(Vec<bool>, [usize; 4])>,
    additive_mask: Option<(Vec<f32>, [usize; 4])>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    fn new(b: usize, h: usize, hkv: usize, tq: usize, tk: usize, dh: usize, dv: usize, seed: u64) -> Case {
        Case {
            b,
            h,
            hkv,
            tq,
            tk,
            dh,
            dv,
            causal: false,
            scale: 1.0 / (dh as f32).sqrt(),
            key_padding: None,
            bool_mask: None,
            additive_mask: None,
            q: rand_vec(b * h * tq * dh, seed),
            k: rand_vec(b * hkv * tk * dh, seed + 1),
            v: rand_vec(b * hkv * tk * dv, seed + 2),
        }
    }

    fn causal(mut self) -> Case {
        self.causal = true;
        self
    }

    fn opts(&self, variant: AttentionVariant) -> AttentionOpts<'_> {
        AttentionOpts {
            scale: self.scale,
            causal: self.causal,
            key_padding: self.key_padding.as_deref().map(|m| (m, self.tk)),
            bool_mask: self.bool_mask.as_ref().map(|(m, s)| MaskRef::new(m, *s)),
            additive_mask: self.additive_mask.as_ref().map(|(m, s)| MaskRef::new(m, *s)),
            variant: Some(variant),
        }
    }

    fn run(&self, pool: &ThreadPool, threads: usize, variant: AttentionVariant) -> Vec<f32> {
        let mut out = vec![f32::NAN; self.b * self.h * self.tq * self.dv];
        attention(
            pool,
            threads,
            Tensor4Ref::new(&self.q, [self.b, self.h, self.tq, self.dh]),
            Tensor4Ref::new(&self.k, [self.b, self.hkv, self.tk, self.dh]),
            Tensor4Ref::new(&self.v, [self.b, self.hkv, self.tk, self.dv]),
            Tensor4Mut::new(&mut out, [self.b, self.h, self.tq, self.dv]),
            &self.opts(variant),
        );
        out
    }

    /// Row `[b, h, i, :]` of the result in f64, and `sum_j p_j |v_jc|` (the scale of each output
    /// element, which the tolerance is relative to), computed as `std.attention.attention` does:
    /// the whole score row, then the masks, then the softmax.
    fn reference_row(&self, b: usize, h: usize, i: usize) -> (Vec<f64>, Vec<f64>) {
        let (dh, dv, tk, tq) = (self.dh, self.dv, self.tk, self.tq);
        let g = h / (self.h / self.hkv);
        let q = &self.q[((b * self.h + h) * tq + i) * dh..][..dh];
        let mut s: Vec<f64> = (0..tk)
            .map(|j| {
                let k = &self.k[((b * self.hkv + g) * tk + j) * dh..][..dh];
                q.iter().zip(k).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>() * self.scale as f64
            })
            .collect();
        for (j, x) in s.iter_mut().enumerate() {
            let at = |st: [usize; 4]| b * st[0] + h * st[1] + i * st[2] + j * st[3];
            if self.causal && j + tq > i + tk {
                *x = f64::NEG_INFINITY;
            }
            if let Some((m, st)) = &self.bool_mask
                && !m[at(*st)]
            {
                *x = f64::NEG_INFINITY;
            }
            if let Some((m, st)) = &self.additive_mask {
                *x += m[at(*st)] as f64;
            }
            if let Some(kp) = &self.key_padding
                && !kp[b * tk + j]
            {
                *x = f64::NEG_INFINITY;
            }
        }
        // softmax as in std.math: an all -inf row gives zeros.
        let m = s.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let m = if m > f64::NEG_INFINITY { m } else { 0.0 };
        let z: Vec<f64> = s.iter().map(|&x| (x - m).exp()).collect();
        let sum: f64 = z.iter().sum();
        let p: Vec<f64> = z.iter().map(|&x| x / if sum > 0.0 { sum } else { 1.0 }).collect();
        let mut out = vec![0.0; dv];
        let mut mag = vec![0.0; dv];
        for (j, &pj) in p.iter().enumerate() {
            let v = &self.v[((b * self.hkv + g) * tk + j) * dv..][..dv];
            for c in 0..dv {
                out[c] += pj * v[c] as f64;
                mag[c] += pj * (v[c] as f64).abs();
            }
        }
        (out, mag)
    }

    /// Checks rows `rows` (all if `None`) of `got` (contiguous `[B, H, Tq, dv]`) against the
    /// reference; returns how many rows were fully masked (reference exactly 0).
    fn check_rows(&self, got: &[f32], rows: Option<&[usize]>, what: &str) -> usize {
        let all: Vec<usize> = (0..self.tq).collect();
        let rows = rows.unwrap_or(&all);
        let mut masked = 0;
        for b in 0..self.b {
            for h in 0..self.h {
                for &i in rows {
                    let (want, mag) = self.reference_row(b, h, i);
                    if mag.iter().all(|&m| m == 0.0) {
                        masked += 1;
                    }
                    let row = &got[((b * self.h + h) * self.tq + i) * self.dv..][..self.dv];
                    for c in 0..self.dv {
                        let err = (row[c] as f64 - want[c]).abs();
                        assert!(
                            err <= RTOL * mag[c],
                            "{what}: out[{b}, {h}, {i}, {c}] = {} but the reference is {} (error {err:e}, \
                             allowed {:e})",
                            row[c],
                            want[c],
                            RTOL * mag[c]
                        );
                    }
                }
            }
        }
        masked
    }

    /// Runs every variant on 1 and 2 threads, checks the result against the reference and that
    /// the thread count does not change a bit. Returns the number of fully masked rows.
    fn check(&self, what: &str) -> usize {
        let pool = ThreadPool::new(2);
        let mut masked = 0;
        for variant in variants() {
            let one = self.run(&pool, 1, variant);
            masked = self.check_rows(&one, None, &format!("{what} ({variant:?})"));
            let two = self.run(&pool, 2, variant);
            assert_bits_eq(&one, &two, &format!("{what} ({variant:?}): 1 vs 2 threads"));
        }
        masked
    }
}

fn assert_bits_eq(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}: element {i} differs: {x} vs {y}");
    }
}

#[test]
fn full_attention() {
    Case::new(2, 3, 3, 70, 70, 32, 32, 1).check("full, Tq = Tk = 70");
    Case::new(1, 2, 2, 130, 200, 16, 24, 2).check("full, Tq = 130, Tk = 200");
    Case::new(1, 1, 1, 1, 1, 8, 8, 3).check("full, one query, one key");
}

#[test]
fn causal_query_shorter_than_keys() {
    // The last query is aligned with the last key: query i sees keys j <= i + 65.
    let c = Case::new(2, 2, 2, 5, 70, 32, 32, 10).causal();
    assert_eq!(c.check("causal, Tq = 5 < Tk = 70"), 0);
    let c = Case::new(1, 2, 2, 70, 150, 24, 16, 11).causal();
    assert_eq!(c.check("causal, Tq = 70 < Tk = 150"), 0);
}

#[test]
fn causal_square() {
    for t in [1, 4, 63, 64, 65, 130, 200] {
        let c = Case::new(1, 2, 2, t, t, 32, 32, 20 + t as u64).causal();
        assert_eq!(c.check(&format!("causal, Tq = Tk = {t}")), 0);
    }
}

#[test]
fn causal_query_longer_than_keys() {
    // The first Tq - Tk queries see no key and get 0.
    let c = Case::new(2, 2, 2, 150, 70, 32, 32, 30).causal();
    assert_eq!(c.check("causal, Tq = 150 > Tk = 70"), 2 * 2 * 80);
    let c = Case::new(1, 1, 1, 9, 3, 5, 7, 31).causal();
    assert_eq!(c.check("causal, Tq = 9 > Tk = 3"), 6);
}

#[test]
fn key_padding() {
    let mut c = Case::new(3, 2, 2, 40, 200, 32, 32, 40);
    let mut kp = rand_bools(3 * 200, 41, 0.7);
    // Batch 1: a whole block of keys padded (64..128) and the tail; batch 2: every key padded.
    for j in (64..128).chain(180..200) {
        kp[200 + j] = false;
    }
    kp[400..600].fill(false);
    c.key_padding = Some(kp);
    assert_eq!(c.check("key padding"), 2 * 40);
    let c = Case { causal: true, ..c };
    assert!(c.check("key padding, causal") >= 2 * 40);
}

#[test]
fn key_padding_with_batch_stride() {
    // The mask is a view: rows 300 apart in a longer buffer.
    let c = Case::new(2, 2, 1, 20, 100, 16, 16, 45);
    let kp = rand_bools(2 * 300, 46, 0.5);
    let pool = ThreadPool::new(2);
    for variant in variants() {
        let mut out = vec![0.0; 2 * 2 * 20 * 16];
        let opts = AttentionOpts {
            key_padding: Some((&kp, 300)),
            variant: Some(variant),
            ..AttentionOpts::new(c.scale)
        };
        attention(
            &pool,
            2,
            Tensor4Ref::new(&c.q, [2, 2, 20, 16]),
            Tensor4Ref::new(&c.k, [2, 1, 100, 16]),
            Tensor4Ref::new(&c.v, [2, 1, 100, 16]),
            Tensor4Mut::new(&mut out, [2, 2, 20, 16]),
            &opts,
        );
        let mut dense = c.clone();
        dense.key_padding = Some([&kp[..100], &kp[300..400]].concat());
        dense.check_rows(&out, None, "key padding with a batch stride");
    }
}

#[test]
fn bool_masks_broadcast() {
    let (b, h, tq, tk) = (2, 3, 30, 90);
    let base = Case::new(b, h, h, tq, tk, 16, 16, 50);
    let layouts: [(&str, usize, [usize; 4]); 4] = [
        ("[B, H, Tq, Tk]", b * h * tq * tk, contiguous_strides([b, h, tq, tk])),
        ("[B, 1, Tq, Tk]", b * tq * tk, [tq * tk, 0, tk, 1]),
        ("[1, H, Tq, Tk]", h * tq * tk, [0, tq * tk, tk, 1]),
        ("[Tq, Tk] shared", tq * tk, [0, 0, tk, 1]),
    ];
    for (i, (name, len, strides)) in layouts.into_iter().enumerate() {
        let mut c = base.clone();
        c.bool_mask = Some((rand_bools(len, 51 + i as u64, 0.6), strides));
        c.check(&format!("bool mask {name}"));
        c.causal = true;
        c.check(&format!("bool mask {name}, causal"));
    }
}

#[test]
fn additive_masks_broadcast() {
    let (b, h, tq, tk) = (2, 2, 33, 77);
    let base = Case::new(b, h, h, tq, tk, 24, 8, 60);
    let layouts: [(&str, usize, [usize; 4]); 3] = [
        ("[B, H, Tq, Tk]", b * h * tq * tk, contiguous_strides([b, h, tq, tk])),
        ("[B, 1, 1, Tk]", b * tk, [tk, 0, 0, 1]),
        ("[Tq, Tk] shared", tq * tk, [0, 0, tk, 1]),
    ];
    for (i, (name, len, strides)) in layouts.into_iter().enumerate() {
        let mut c = base.clone();
        let mut m: Vec<f32> = rand_vec(len, 61 + i as u64).iter().map(|x| x * 3.0).collect();
        for x in m.iter_mut().step_by(7) {
            *x = f32::NEG_INFINITY;
        }
        c.additive_mask = Some((m, strides));
        c.check(&format!("additive mask {name}"));
        c.causal = true;
        c.check(&format!("additive mask {name}, causal"));
    }
}

#[test]
fn fully_masked_rows_are_zero() {
    let (tq, tk) = (20, 100);
    // Bool mask: rows 3 and 17 see nothing.
    let mut c = Case::new(1, 2, 2, tq, tk, 16, 16, 70);
    let mut m = vec![true; tq * tk];
    m[3 * tk..4 * tk].fill(false);
    m[17 * tk..18 * tk].fill(false);
    c.bool_mask = Some((m, [0, 0, tk, 1]));
    assert_eq!(c.check("bool mask with fully masked rows"), 2 * 2);
    let pool = ThreadPool::new(1);
    for variant in variants() {
        let out = c.run(&pool, 1, variant);
        for h in 0..2 {
            for i in [3, 17] {
                let row = &out[(h * tq + i) * 16..][..16];
                assert!(row.iter().all(|&x| x == 0.0), "row {i} of head {h}: {row:?}");
            }
        }
    }
    // Additive mask: -inf everywhere on row 5; combined with causal on short keys.
    let mut c = Case::new(1, 1, 1, tq, tk, 16, 16, 71);
    let mut m = rand_vec(tq * tk, 72);
    m[5 * tk..6 * tk].fill(f32::NEG_INFINITY);
    c.additive_mask = Some((m, [0, 0, tk, 1]));
    assert_eq!(c.check("additive mask with a fully masked row"), 1);
    // Every key padded: the whole output is 0.
    let mut c = Case::new(2, 1, 1, 10, 30, 8, 8, 73).causal();
    c.key_padding = Some(vec![false; 60]);
    assert_eq!(c.check("every key padded"), 20);
}

#[test]
fn all_masks_together() {
    let (b, h, hkv, tq, tk) = (2, 4, 2, 50, 140);
    let mut c = Case::new(b, h, hkv, tq, tk, 32, 32, 80).causal();
    c.key_padding = Some(rand_bools(b * tk, 81, 0.8));
    c.bool_mask = Some((rand_bools(h * tq * tk, 82, 0.8), [0, tq * tk, tk, 1]));
    c.additive_mask = Some((rand_vec(b * tq * tk, 83), [tq * tk, 0, tk, 1]));
    c.check("causal + key padding + bool + additive, GQA");
}

#[test]
fn grouped_query_heads_equal_repeated_kv_heads() {
    let (b, h, hkv, tq, tk, dh) = (2, 8, 2, 37, 75, 32);
    let c = Case::new(b, h, hkv, tq, tk, dh, dh, 90).causal();
    c.check("GQA H = 8, Hkv = 2");
    // The same problem with each kv head repeated H / Hkv times (`repeat_kv`).
    let repeat = |x: &[f32]| -> Vec<f32> {
        let mut r = Vec::with_capacity(x.len() * h / hkv);
        for bi in 0..b {
            for hi in 0..h {
                let g = hi / (h / hkv);
                r.extend_from_slice(&x[((bi * hkv + g) * tk) * dh..][..tk * dh]);
            }
        }
        r
    };
    let mha = Case {
        hkv: h,
        k: repeat(&c.k),
        v: repeat(&c.v),
        ..c.clone()
    };
    let pool = ThreadPool::new(2);
    for variant in variants() {
        assert_bits_eq(
            &c.run(&pool, 2, variant),
            &mha.run(&pool, 2, variant),
            &format!("GQA vs repeated heads ({variant:?})"),
        );
    }
    // Multi-query attention (Hkv = 1) equals every head reading the one kv head through a zero
    // head stride.
    let mqa = Case::new(b, h, 1, tq, tk, dh, dh, 91).causal();
    let kv_strides = [tk * dh, 0, dh, 1];
    for variant in variants() {
        let mut out = vec![0.0; b * h * tq * dh];
        attention(
            &pool,
            2,
            Tensor4Ref::new(&mqa.q, [b, h, tq, dh]),
            Tensor4Ref::from_strides(&mqa.k, [b, h, tk, dh], kv_strides),
            Tensor4Ref::from_strides(&mqa.v, [b, h, tk, dh], kv_strides),
            Tensor4Mut::new(&mut out, [b, h, tq, dh]),
            &mqa.opts(variant),
        );
        assert_bits_eq(&out, &mqa.run(&pool, 1, variant), "MQA vs a zero head stride");
    }
}

#[test]
fn cross_attention() {
    Case::new(2, 4, 4, 3, 17, 32, 32, 100).check("cross attention, Tq = 3, Tk = 17");
    Case::new(1, 4, 1, 3, 17, 20, 12, 101).check("cross attention, MQA, dv != dh");
    let mut c = Case::new(2, 2, 2, 3, 17, 16, 16, 102);
    c.key_padding = Some(rand_bools(2 * 17, 103, 0.6));
    c.check("cross attention with key padding");
}

#[test]
fn odd_head_dims() {
    for (i, d) in [1, 3, 17, 64, 80].into_iter().enumerate() {
        Case::new(1, 2, 2, 45, 70, d, d, 110 + i as u64)
            .causal()
            .check(&format!("dh = dv = {d}, causal"));
        Case::new(1, 2, 1, 20, 33, d, 80 - d + 1, 120 + i as u64).check(&format!("dh = {d}, dv = {}", 81 - d));
    }
}

#[test]
fn strided_views() {
    // q, out in the [B, T, H, d] layout of a projection (no permute); k stored [B, Hkv, dh, Tk]
    // (a transposed view); v with a padded row stride.
    let (b, h, hkv, tq, tk, dh, dv) = (2, 4, 2, 50, 90, 24, 20);
    let c = Case::new(b, h, hkv, tq, tk, dh, dv, 130).causal();
    let pool = ThreadPool::new(2);
    let q_bthd: Vec<f32> = {
        let mut x = vec![0.0; b * tq * h * dh];
        for bi in 0..b {
            for hi in 0..h {
                for t in 0..tq {
                    for d in 0..dh {
                        x[((bi * tq + t) * h + hi) * dh + d] = c.q[((bi * h + hi) * tq + t) * dh + d];
                    }
                }
            }
        }
        x
    };
    let k_t: Vec<f32> = {
        let mut x = vec![0.0; b * hkv * dh * tk];
        for bh in 0..b * hkv {
            for j in 0..tk {
                for d in 0..dh {
                    x[(bh * dh + d) * tk + j] = c.k[(bh * tk + j) * dh + d];
                }
            }
        }
        x
    };
    let ld = dv + 5;
    let v_pad: Vec<f32> = {
        let mut x = vec![f32::NAN; b * hkv * tk * ld];
        for row in 0..b * hkv * tk {
            x[row * ld..row * ld + dv].copy_from_slice(&c.v[row * dv..(row + 1) * dv]);
        }
        x
    };
    for variant in variants() {
        let mut out = vec![0.0; b * tq * h * dv];
        attention(
            &pool,
            2,
            Tensor4Ref::from_strides(&q_bthd, [b, h, tq, dh], [tq * h * dh, dh, h * dh, 1]),
            Tensor4Ref::from_strides(&k_t, [b, hkv, tk, dh], [hkv * dh * tk, dh * tk, 1, tk]),
            Tensor4Ref::from_strides(&v_pad, [b, hkv, tk, dv], [hkv * tk * ld, tk * ld, ld, 1]),
            Tensor4Mut::from_strides(&mut out, [b, h, tq, dv], [tq * h * dv, dv, h * dv, 1]),
            &c.opts(variant),
        );
        let plain = c.run(&pool, 1, variant);
        for bi in 0..b {
            for hi in 0..h {
                for t in 0..tq {
                    for e in 0..dv {
                        let x = out[((bi * tq + t) * h + hi) * dv + e];
                        let y = plain[((bi * h + hi) * tq + t) * dv + e];
                        assert_eq!(
                            x.to_bits(),
                            y.to_bits(),
                            "strided views ({variant:?}) at {bi} {hi} {t} {e}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn zero_stride_views() {
    // One key row per (batch, kv head) broadcast over Tk through a zero stride, and a value tensor
    // whose rows overlap (row stride 1 < dv): the same bits as the materialised tensors.
    let (b, h, hkv, tq, tk, dh, dv) = (2, 2, 1, 9, 70, 19, 6);
    let base = Case::new(b, h, hkv, tq, tk, dh, dv, 135).causal();
    let k_row = rand_vec(b * dh, 136);
    let v_src = rand_vec(b * (tk + dv), 137);
    let mut c = base.clone();
    c.k = (0..b * tk).flat_map(|r| k_row[r / tk * dh..][..dh].to_vec()).collect();
    c.v = (0..b * tk)
        .flat_map(|r| v_src[(r / tk) * (tk + dv) + r % tk..][..dv].to_vec())
        .collect();
    c.check("materialised broadcast keys, overlapping values");
    let pool = ThreadPool::new(2);
    for variant in variants() {
        let mut out = vec![0.0; b * h * tq * dv];
        attention(
            &pool,
            2,
            Tensor4Ref::new(&c.q, [b, h, tq, dh]),
            Tensor4Ref::from_strides(&k_row, [b, hkv, tk, dh], [dh, 0, 0, 1]),
            Tensor4Ref::from_strides(&v_src, [b, hkv, tk, dv], [tk + dv, 0, 1, 1]),
            Tensor4Mut::new(&mut out, [b, h, tq, dv]),
            &c.opts(variant),
        );
        assert_bits_eq(
            &out,
            &c.run(&pool, 1, variant),
            &format!("zero-stride views ({variant:?})"),
        );
    }
}

#[test]
fn long_sequence_sampled_rows() {
    let (t, dh) = (2048, 64);
    let mut rows: Vec<usize> = vec![0, 1, 2, 63, 64, 65, 127, 128, 1000, 1023, 1024, 2046, 2047];
    rows.extend(
        rand_vec(12, 140)
            .iter()
            .map(|&x| ((x + 1.0) / 2.0 * t as f32) as usize % t),
    );
    let pool = ThreadPool::new(2);
    for causal in [true, false] {
        let mut c = Case::new(1, 2, 1, t, t, dh, dh, 141);
        c.causal = causal;
        for variant in variants() {
            let one = c.run(&pool, 1, variant);
            c.check_rows(&one, Some(&rows), &format!("T = 2048, causal = {causal} ({variant:?})"));
            let two = c.run(&pool, 2, variant);
            assert_bits_eq(&one, &two, "T = 2048: 1 vs 2 threads");
        }
    }
}

#[test]
fn thread_counts_give_identical_bits() {
    let mut c = Case::new(2, 4, 2, 300, 300, 64, 64, 150).causal();
    c.key_padding = Some(rand_bools(2 * 300, 151, 0.9));
    let pool = ThreadPool::new(3);
    for variant in variants() {
        let one = c.run(&pool, 1, variant);
        for threads in [0, 2, 3, 64] {
            assert_bits_eq(&one, &c.run(&pool, threads, variant), &format!("{threads} threads"));
        }
    }
}

#[test]
fn empty_problems() {
    let pool = ThreadPool::new(2);
    // No keys: every query sees nothing.
    let c = Case::new(1, 2, 2, 5, 0, 8, 8, 160);
    for variant in variants() {
        assert!(c.run(&pool, 2, variant).iter().all(|&x| x == 0.0));
    }
    // No queries, no batch: nothing to do (and no panic).
    Case::new(1, 2, 2, 0, 5, 8, 8, 161).run(&pool, 2, AttentionVariant::Portable);
    Case::new(0, 2, 2, 4, 5, 8, 8, 162).run(&pool, 2, AttentionVariant::Portable);
    // dh = 0: every score is 0, so the output is the mean of the values.
    Case {
        scale: 1.0,
        ..Case::new(1, 1, 1, 3, 7, 0, 4, 163)
    }
    .check("dh = 0");
}

#[test]
#[should_panic(expected = "not a multiple")]
fn heads_must_be_a_multiple_of_kv_heads() {
    Case::new(1, 3, 2, 4, 4, 8, 8, 170).run(&ThreadPool::new(1), 1, AttentionVariant::Portable);
}

#[test]
#[should_panic(expected = "shapes disagree")]
fn shapes_must_agree() {
    let c = Case::new(1, 2, 2, 4, 4, 8, 8, 171);
    let mut out = vec![0.0; 2 * 4 * 8];
    attention(
        &ThreadPool::new(1),
        1,
        Tensor4Ref::new(&c.q, [1, 2, 4, 8]),
        Tensor4Ref::new(&c.k, [1, 2, 4, 8]),
        Tensor4Ref::new(&c.v[..2 * 3 * 8], [1, 2, 3, 8]),
        Tensor4Mut::new(&mut out, [1, 2, 4, 8]),
        &AttentionOpts::new(1.0),
    );
}

#[test]
#[should_panic(expected = "overlapping")]
fn overlapping_outputs_are_refused() {
    let mut out = vec![0.0; 64];
    Tensor4Mut::from_strides(&mut out, [1, 2, 4, 8], [0, 8, 4, 1]);
}

#[test]
#[should_panic(expected = "needs")]
fn masks_are_checked_against_the_dims() {
    let c = Case::new(1, 2, 2, 4, 6, 8, 8, 172);
    let m = vec![true; 4 * 5];
    let mut out = vec![0.0; 2 * 4 * 8];
    attention(
        &ThreadPool::new(1),
        1,
        Tensor4Ref::new(&c.q, [1, 2, 4, 8]),
        Tensor4Ref::new(&c.k, [1, 2, 6, 8]),
        Tensor4Ref::new(&c.v, [1, 2, 6, 8]),
        Tensor4Mut::new(&mut out, [1, 2, 4, 8]),
        &AttentionOpts {
            bool_mask: Some(MaskRef::shared(&m, 5)),
            ..AttentionOpts::new(1.0)
        },
    );
}
