//! Plain-Rust inner kernels (the fallback, and the only variant off x86-64). Same tiling as the
//! AVX2 kernels; the compiler may vectorise the inner loops.

use super::{BK, Isa, MR, NC};

pub(crate) static ISA: Isa = Isa {
    scores,
    pv,
    rows: &crate::softmax::portable::OPS,
    transpose_keys,
};

fn scores(q: &[f32], dh: usize, kt: &[f32], cols: usize, s: &mut [f32]) {
    assert!(cols <= BK && cols.is_multiple_of(NC) && q.len() >= MR * dh && kt.len() >= dh * BK);
    assert!(s.len() >= MR * BK);
    for c in (0..cols).step_by(NC) {
        let mut acc = [[0.0f32; NC]; MR];
        for d in 0..dh {
            let k: &[f32; NC] = kt[d * BK + c..d * BK + c + NC].try_into().unwrap();
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = q[r * dh + d];
                for (a, &y) in acc.iter_mut().zip(k) {
                    *a += x * y;
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            s[r * BK + c..r * BK + c + NC].copy_from_slice(acc);
        }
    }
}

fn pv(p: &[f32], nk: usize, v: &[f32], dvp: usize, o: &mut [f32]) {
    assert!(nk <= BK && dvp.is_multiple_of(NC) && p.len() >= MR * BK && v.len() >= nk * dvp);
    assert!(o.len() >= MR * dvp);
    for c in (0..dvp).step_by(NC) {
        let mut acc = [[0.0f32; NC]; MR];
        for (r, acc) in acc.iter_mut().enumerate() {
            acc.copy_from_slice(&o[r * dvp + c..r * dvp + c + NC]);
        }
        for j in 0..nk {
            let vj: &[f32; NC] = v[j * dvp + c..j * dvp + c + NC].try_into().unwrap();
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = p[r * BK + j];
                for (a, &y) in acc.iter_mut().zip(vj) {
                    *a += x * y;
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            o[r * dvp + c..r * dvp + c + NC].copy_from_slice(acc);
        }
    }
}

fn transpose_keys(k: &[f32], ld: usize, nk: usize, dh: usize, kt: &mut [f32]) {
    for j in 0..nk {
        for (d, &x) in k[j * ld..j * ld + dh].iter().enumerate() {
            kt[d * BK + j] = x;
        }
    }
}
