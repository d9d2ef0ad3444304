//! AVX2+FMA inner kernels: 4x16 register tiles (8 accumulators) for the scores and for the
//! probabilities @ values; the online softmax's row maximum, `exp` and scaling are
//! [`crate::softmax`]'s AVX2 ones.
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
    rows: &crate::softmax::avx2::OPS,
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
