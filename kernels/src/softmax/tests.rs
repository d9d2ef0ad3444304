use super::*;

/// Softmax of one row in f64, with the module's semantics for rows of -inf.
fn reference(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &y| m.max(f64::from(y)));
    let m = if m > f64::NEG_INFINITY { m } else { 0.0 };
    let e: Vec<f64> = x.iter().map(|&y| (f64::from(y) - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let s = if s > 0.0 { s } else { 1.0 };
    e.iter().map(|v| v / s).collect()
}

fn variants() -> Vec<SoftmaxVariant> {
    [
        SoftmaxVariant::Avx512,
        SoftmaxVariant::Avx2Fma,
        SoftmaxVariant::Portable,
    ]
    .into_iter()
    .filter(|v| v.is_supported())
    .collect()
}

/// Deterministic values in about [-12, 12], with some -inf.
fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503));
            if h.is_multiple_of(29) {
                f32::NEG_INFINITY
            } else {
                (h % 24_001) as f32 / 1000.0 - 12.0
            }
        })
        .collect()
}

fn assert_rows_close(v: SoftmaxVariant, x: &[f32], got: &[f32], len: usize) {
    for (r, (row, out)) in x.chunks(len).zip(got.chunks(len)).enumerate() {
        let want = reference(row);
        for (j, (&g, &w)) in out.iter().zip(&want).enumerate() {
            // Relative to the row's largest probability, as a sum of `len` rounded terms allows.
            assert!(
                (f64::from(g) - w).abs() <= 2e-6 * w.max(1e-30) + 1e-7 / len as f64,
                "{v:?}, rows of {len}: row {r}[{j}] = {g}, want {w}"
            );
        }
    }
}

#[test]
fn rows_match_f64_softmax_at_every_length() {
    for v in variants() {
        for len in [1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 100, 1024, 1031] {
            let rows = 3;
            let x = data(rows * len, len as u32);
            let mut out = vec![f32::NAN; x.len()];
            softmax_rows_with(v, &x, &mut out, len);
            assert_rows_close(v, &x, &out, len);
            let mut inplace = x.clone();
            softmax_rows_in_place_with(v, &mut inplace, len);
            assert_eq!(
                inplace.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
                out.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
                "{v:?}: in place differs, rows of {len}"
            );
        }
    }
}

#[test]
fn special_rows_follow_the_graph_semantics() {
    let ninf = f32::NEG_INFINITY;
    for v in variants() {
        // All -inf: zeros. One +inf: NaN at it (inf - inf) and... every exp is NaN or 0, the
        // sum is NaN, so the divisor is 1.
        let len = 19;
        let mut x = vec![ninf; len];
        x.extend((0..len).map(|j| if j == 5 { f32::NAN } else { j as f32 * 0.5 }));
        let mut out = vec![1.0; x.len()];
        softmax_rows_with(v, &x, &mut out, len);
        assert!(
            out[..len].iter().all(|&y| y == 0.0),
            "{v:?}: row of -inf gives {:?}",
            &out[..len]
        );
        // A NaN element is ignored by the maximum; its own exp is NaN, so the sum is NaN and
        // the divisor 1: the row holds exp(x - max) unnormalised, NaN at the NaN.
        let row = &out[len..];
        assert!(row[5].is_nan(), "{v:?}: NaN element gives {}", row[5]);
        let m = (len - 1) as f32 * 0.5;
        for (j, &y) in row.iter().enumerate().filter(|(j, _)| *j != 5) {
            let want = (f64::from(j as f32 * 0.5) - f64::from(m)).exp();
            assert!(
                (f64::from(y) - want).abs() <= 3e-7 * want,
                "{v:?}: [{j}] = {y}, want {want}"
            );
        }
    }
}

#[test]
fn exp_is_accurate_on_softmax_arguments() {
    for v in variants() {
        let ops = v.ops();
        // Every argument softmax can pass: x - max in [-inf, 0], and the edges of the ranges.
        let mut x: Vec<f32> = (0..=20_000).map(|i| -(i as f32) * 0.0051).collect();
        x.extend([
            -87.0,
            -87.3,
            -87.4,
            -90.0,
            -103.0,
            -104.5,
            -200.0,
            f32::NEG_INFINITY,
            -0.0,
            -1e-30,
        ]);
        let mut out = x.clone();
        ops.exp_sum(&mut out, 0.0, &[]);
        for (&a, &y) in x.iter().zip(&out) {
            let want = f64::from(a).exp();
            let ok = if want < f64::from(f32::MIN_POSITIVE) {
                // Subnormal: 0 (AVX2) or to within their spacing.
                y == 0.0 || (f64::from(y) - want).abs() <= 2.0 * 1.4e-45
            } else {
                (f64::from(y) - want).abs() <= 3e-7 * want
            };
            assert!(ok, "{v:?}: exp({a}) = {y}, want {want}");
        }
        let sum: f64 = out.iter().map(|&y| f64::from(y)).sum();
        let got = f64::from(ops.exp_sum(&mut x.clone(), 0.0, &[]).sum);
        assert!((got - sum).abs() <= 2e-5 * sum, "{v:?}: sum {got}, want {sum}");
    }
}

#[test]
fn empty_rows_and_empty_input() {
    let mut out: [f32; 0] = [];
    softmax_rows(&[], &mut out, 0);
    softmax_rows(&[], &mut out, 4);
}

#[test]
#[should_panic(expected = "rows of 4")]
fn a_ragged_input_is_refused() {
    let mut out = [0.0; 6];
    softmax_rows(&[0.0; 6], &mut out, 4);
}
