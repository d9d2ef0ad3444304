//! AVX2+FMA inner kernels: 4x16 register tiles (8 accumulators) for the scores and for the
//! probabilities @ values, and a vectorised `exp` (Cephes' polynomial, about 2 ulp) for the
//! online softmax.
//!
//! The `*_avx2` functions have `#[target_feature(enable = "avx2,fma")]`; they are reached only
//! through [`ISA`], which [`AttentionVariant::isa`](super::AttentionVariant::isa) hands out after
//! checking that the CPU has those features. The safe wrappers check every slice length the
//! unchecked loads and stores rely on.

use std::arch::x86_64::*;

use super::{BK, Isa, MR, NC};

pub(crate) static ISA: Isa = Isa {
    scores,
    pv,
    row_max,
    exp_sum,
    scale,
    transpose_keys,
};

const LANES: usize = 8;

fn scores(q: &[f32], dh: usize, kt: &[f32], cols: usize, s: &mut [f32]) {
    assert!(cols <= BK && cols.is_multiple_of(NC) && q.len() >= MR * dh && kt.len() >= dh * BK);
    assert!(s.len() >= MR * BK);
    // SAFETY: this table is only used once the CPU is known to have AVX2 and FMA (see the module
    // documentation); the lengths the function reads and writes were checked above.
    unsafe { scores_avx2(q.as_ptr(), dh, kt.as_ptr(), cols, s.as_mut_ptr()) }
}

/// `s[r * BK + c] = sum_d q[r * dh + d] * kt[d * BK + c]`, `r < MR`, `c < cols`.
///
/// # Safety
///
/// `q` is valid for `MR * dh` reads, `kt` for `dh * BK`, `s` for `MR * BK` writes;
/// `cols <= BK` is a multiple of `NC`.
#[target_feature(enable = "avx2,fma")]
unsafe fn scores_avx2(q: *const f32, dh: usize, kt: *const f32, cols: usize, s: *mut f32) {
    let mut c = 0;
    while c < cols {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for d in 0..dh {
            // SAFETY: d < dh and c + NC <= cols <= BK, so both loads are inside kt's dh * BK.
            let (k0, k1) = unsafe {
                let p = kt.add(d * BK + c);
                (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(LANES)))
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < MR and d < dh: inside q's MR * dh.
                let x = _mm256_set1_ps(unsafe { *q.add(r * dh + d) });
                acc[0] = _mm256_fmadd_ps(x, k0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, k1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: r < MR and c + NC <= BK: inside s's MR * BK.
            unsafe {
                let p = s.add(r * BK + c);
                _mm256_storeu_ps(p, acc[0]);
                _mm256_storeu_ps(p.add(LANES), acc[1]);
            }
        }
        c += NC;
    }
}

fn pv(p: &[f32], nk: usize, v: &[f32], dvp: usize, o: &mut [f32]) {
    assert!(nk <= BK && dvp.is_multiple_of(NC) && p.len() >= MR * BK && v.len() >= nk * dvp);
    assert!(o.len() >= MR * dvp);
    // SAFETY: as in `scores`: AVX2 and FMA are present, and the lengths were checked above.
    unsafe { pv_avx2(p.as_ptr(), nk, v.as_ptr(), dvp, o.as_mut_ptr()) }
}

/// `o[r * dvp + c] += sum_{j < nk} p[r * BK + j] * v[j * dvp + c]`, `r < MR`, `c < dvp`.
///
/// # Safety
///
/// `p` is valid for `MR * BK` reads, `v` for `nk * dvp`, `o` for `MR * dvp` reads and writes;
/// `nk <= BK`; `dvp` is a multiple of `NC`.
#[target_feature(enable = "avx2,fma")]
unsafe fn pv_avx2(p: *const f32, nk: usize, v: *const f32, dvp: usize, o: *mut f32) {
    let mut c = 0;
    while c < dvp {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: r < MR and c + NC <= dvp: inside o's MR * dvp.
            unsafe {
                let q = o.add(r * dvp + c);
                acc[0] = _mm256_loadu_ps(q);
                acc[1] = _mm256_loadu_ps(q.add(LANES));
            }
        }
        for j in 0..nk {
            // SAFETY: j < nk and c + NC <= dvp: inside v's nk * dvp.
            let (v0, v1) = unsafe {
                let q = v.add(j * dvp + c);
                (_mm256_loadu_ps(q), _mm256_loadu_ps(q.add(LANES)))
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < MR and j < nk <= BK: inside p's MR * BK.
                let x = _mm256_set1_ps(unsafe { *p.add(r * BK + j) });
                acc[0] = _mm256_fmadd_ps(x, v0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, v1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: as for the loads above.
            unsafe {
                let q = o.add(r * dvp + c);
                _mm256_storeu_ps(q, acc[0]);
                _mm256_storeu_ps(q.add(LANES), acc[1]);
            }
        }
        c += NC;
    }
}

fn row_max(x: &[f32]) -> f32 {
    // SAFETY: AVX2 is present (see `scores`); the function only reads `x` through its slice.
    unsafe { row_max_avx2(x) }
}

#[target_feature(enable = "avx2,fma")]
fn row_max_avx2(x: &[f32]) -> f32 {
    let mut chunks = x.chunks_exact(LANES);
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in &mut chunks {
        // SAFETY: `c` has LANES elements.
        m = _mm256_max_ps(m, unsafe { _mm256_loadu_ps(c.as_ptr()) });
    }
    let mut lanes = [0.0f32; LANES];
    // SAFETY: `lanes` has LANES elements.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    lanes
        .iter()
        .chain(chunks.remainder())
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

fn exp_sum(x: &mut [f32], m: f32) -> f32 {
    // SAFETY: AVX2 and FMA are present (see `scores`); the function only touches `x` through its
    // slice.
    unsafe { exp_sum_avx2(x, m) }
}

#[target_feature(enable = "avx2,fma")]
fn exp_sum_avx2(x: &mut [f32], m: f32) -> f32 {
    let mv = _mm256_set1_ps(m);
    let mut sum = _mm256_setzero_ps();
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        // SAFETY: `c` has LANES elements.
        unsafe {
            let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), mv));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            sum = _mm256_add_ps(sum, e);
        }
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        // The tail through a full vector padded with -inf (whose exp is 0).
        let mut lanes = [f32::NEG_INFINITY; LANES];
        lanes[..rest.len()].copy_from_slice(rest);
        // SAFETY: `lanes` has LANES elements.
        unsafe {
            let e = exp256(_mm256_sub_ps(_mm256_loadu_ps(lanes.as_ptr()), mv));
            _mm256_storeu_ps(lanes.as_mut_ptr(), e);
            sum = _mm256_add_ps(sum, e);
        }
        rest.copy_from_slice(&lanes[..rest.len()]);
    }
    hsum(sum)
}

/// The sum of the lanes, in a fixed order.
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
    _mm_cvtss_f32(s)
}

/// `exp(x)` lane by lane (Cephes' `expf`: a degree-7 polynomial on `x - n ln 2`, times `2^n`);
/// 0 below -87 (where `exp` leaves the normal range), so -inf gives 0.
#[target_feature(enable = "avx2,fma")]
fn exp256(x: __m256) -> __m256 {
    let xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.5)), _mm256_set1_ps(88.375));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        xc,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), xc);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut y = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
    }
    let y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    )));
    let keep = _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(-87.0));
    _mm256_and_ps(_mm256_mul_ps(y, pow2), keep)
}

fn scale(x: &mut [f32], a: f32) {
    // SAFETY: AVX2 is present (see `scores`); the function only touches `x` through its slice.
    unsafe { scale_avx2(x, a) }
}

#[target_feature(enable = "avx2,fma")]
fn scale_avx2(x: &mut [f32], a: f32) {
    let av = _mm256_set1_ps(a);
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        // SAFETY: `c` has LANES elements.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), av)) };
    }
    for y in chunks.into_remainder() {
        *y *= a;
    }
}

fn transpose_keys(k: &[f32], ld: usize, nk: usize, dh: usize, kt: &mut [f32]) {
    assert!(nk <= BK && kt.len() >= dh * BK);
    assert!(nk == 0 || dh == 0 || k.len() >= (nk - 1) * ld + dh);
    // SAFETY: AVX2 is present (see `scores`); the lengths were checked above.
    unsafe { transpose_keys_avx2(k.as_ptr(), ld, nk, dh, kt.as_mut_ptr()) }
}

/// `kt[d * BK + j] = k[j * ld + d]` for `j < nk`, `d < dh`: 8x8 blocks in registers, the edges
/// element by element.
///
/// # Safety
///
/// `k` is valid for reads of `(nk - 1) * ld + dh` elements (if `nk` and `dh` are not 0; rows may
/// overlap), `kt` for writes of `dh * BK`, and `nk <= BK`.
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose_keys_avx2(k: *const f32, ld: usize, nk: usize, dh: usize, kt: *mut f32) {
    let (nk8, dh8) = (nk / LANES * LANES, dh / LANES * LANES);
    for j in (0..nk8).step_by(LANES) {
        for d in (0..dh8).step_by(LANES) {
            // SAFETY: rows j..j + 8 < nk and columns d..d + 8 <= dh are inside k.
            let r: [__m256; LANES] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(k.add((j + i) * ld + d)) });
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (i, c) in cols.into_iter().enumerate() {
                // SAFETY: d + i < dh and j + 8 <= nk <= BK: inside kt's dh * BK.
                unsafe { _mm256_storeu_ps(kt.add((d + i) * BK + j), c) };
            }
        }
        for jj in j..j + LANES {
            for d in dh8..dh {
                // SAFETY: jj < nk and d < dh: inside both buffers.
                unsafe { *kt.add(d * BK + jj) = *k.add(jj * ld + d) };
            }
        }
    }
    for j in nk8..nk {
        for d in 0..dh {
            // SAFETY: j < nk and d < dh: inside both buffers.
            unsafe { *kt.add(d * BK + j) = *k.add(j * ld + d) };
        }
    }
}
