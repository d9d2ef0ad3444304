//! Pointer Networks (`examples/ptrnet`) against its PyTorch reference (`examples/ptrnet/reference.py`):
//!
//! - both backends reproduce the golden outputs of every entry point (`golden.safetensors`, computed
//!   in float64 by PyTorch): tours, beams and hull indices exactly, log-probabilities within 1e-4
//!   relative, with the trained weights (hidden 128) and with random weights (hidden 32);
//! - the structural invariants of `architectures.md` on fresh random points: every TSP tour is a
//!   permutation, a visited point gets probability exactly 0, beam width 1 is greedy, beams are
//!   sorted permutations whose scores are their teacher-forced log-probabilities, hull sequences
//!   are valid, repeat no point and end in EOS;
//! - the trained models reach PyTorch's exact-hull accuracy (within one point) and mean TSP tour
//!   length (within 1%) on the 1,000 fresh instances per task of `eval.safetensors`.

mod common;

use common::{get, out as output, run};
use mlc_examples::engine::{Backend, Engine};
use mlc_runtime::{Tensor, TensorFile};

const DSL: &str = include_str!("../ptrnet/model.dsl");

fn load(file: &str) -> TensorFile {
    common::load("ptrnet", file)
}

/// The model compiled with `set`, weights from `weights`, run by `backend`.
fn engine(weights: &str, set: &[(&str, &str)], backend: Backend) -> Engine {
    engine_of(DSL, weights, set, backend)
}

/// `model.dsl` with one more entry, `probe`, that returns the encoder's intermediate values, so a
/// mismatch can be located before the decoding loop.
fn probe_dsl() -> String {
    common::with_entries(
        DSL,
        "\n  entry probe(points: f32[B, N, coords]) {\n    let (e, h, c) = encode(points)\n    \
         return encoder_states = e, encoder_h = h, encoder_c = c, w1e = w1(e)\n  }",
    )
}

fn engine_of(dsl: &str, weights: &str, set: &[(&str, &str)], backend: Backend) -> Engine {
    let set: Vec<(&str, String)> = set.iter().map(|&(k, v)| (k, v.to_string())).collect();
    common::engine(common::compile("ptrnet", dsl, &set, &[]), &load(weights), backend)
}

const TRAINED: &[(&str, &str)] = &[("hidden", "128")];

// ---------------------------------------------------------------- goldens

/// The largest error of `got` against `want`, relative to max(|want|, 1) (log-probabilities of
/// confident steps are tiny, where a relative error measures only rounding); infinities must
/// match exactly.
fn max_rel_err(what: &str, got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if w.is_infinite() || g.is_infinite() {
            assert_eq!(g, w, "{what}[{i}]: got {g}, want {w}");
            continue;
        }
        let err = f64::from((g - w).abs()) / f64::from(w.abs()).max(1.0);
        assert!(err.is_finite(), "{what}[{i}]: got {g}, want {w}");
        worst = worst.max(err);
    }
    worst
}

/// Runs `entry` on the golden inputs and compares every output named in `outputs` with the golden
/// tensor `{prefix}_{name}`; returns the largest relative error of the float outputs.
fn check_entry(
    engine: &mut Engine,
    g: &TensorFile,
    what: &str,
    entry: &str,
    inputs: Vec<(&str, Tensor)>,
    prefix: &str,
    outputs: &[&str],
) -> f64 {
    let outs = run(engine, entry, &inputs);
    let mut worst = 0.0f64;
    for name in outputs {
        let got = output(&outs, name);
        let want = get(g, &format!("{prefix}_{name}"));
        assert_eq!(got.shape(), want.shape(), "{what}: {entry}.{name} shape");
        match (got.as_i64(), want.as_i64()) {
            (Some(a), Some(b)) => assert_eq!(a, b, "{what}: {entry}.{name}"),
            _ => {
                let err = max_rel_err(
                    &format!("{what}: {entry}.{name}"),
                    &got.to_f32_vec(),
                    &want.to_f32_vec(),
                );
                assert!(err <= 1e-4, "{what}: {entry}.{name}: relative error {err:e} > 1e-4");
                worst = worst.max(err);
            }
        }
    }
    worst
}

/// Every entry point against the PyTorch goldens; returns the largest relative error seen.
fn check_goldens(backend: Backend) -> f64 {
    let g = load("golden.safetensors");
    let what = format!("{backend:?}");
    let mut worst = 0.0f64;
    for (prefix, weights, set) in [
        ("tsp", "weights_tsp.safetensors", TRAINED),
        ("rnd", "weights_random.safetensors", &[][..]),
    ] {
        let pts = get(&g, &format!("{prefix}_points"));
        let mut probe = engine_of(&probe_dsl(), weights, set, backend);
        let probe_outs = ["encoder_states", "encoder_h", "encoder_c", "w1e"];
        worst = worst.max(check_entry(
            &mut probe,
            &g,
            &what,
            "probe",
            vec![("points", pts.clone())],
            prefix,
            &probe_outs,
        ));
        let mut e = engine(weights, set, backend);
        let tsp_outs = ["tour", "logp"];
        worst = worst.max(check_entry(
            &mut e,
            &g,
            &what,
            "greedy",
            vec![("points", pts.clone())],
            &format!("{prefix}_greedy"),
            &tsp_outs,
        ));
        let beam_outs = ["tour", "score", "beams", "beam_scores"];
        worst = worst.max(check_entry(
            &mut e,
            &g,
            &what,
            "beam",
            vec![("points", pts.clone())],
            &format!("{prefix}_beam"),
            &beam_outs,
        ));
        for case in ["scores", "scores_revisit"] {
            let tour = get(&g, &format!("{prefix}_{case}_tour"));
            let inputs = vec![("points", pts.clone()), ("tour", tour)];
            worst = worst.max(check_entry(
                &mut e,
                &g,
                &what,
                "scores",
                inputs,
                &format!("{prefix}_{case}"),
                &["step_logp", "logp"],
            ));
        }
        // Teacher forcing greedy's own tour gives greedy's per-step log-probabilities.
        let tour = get(&g, &format!("{prefix}_greedy_tour"));
        let outs = run(&mut e, "scores", &[("points", pts.clone()), ("tour", tour)]);
        let want = get(&g, &format!("{prefix}_greedy_step_logp")).to_f32_vec();
        let (b, n) = (pts.shape()[0], pts.shape()[1]);
        let tour = get(&g, &format!("{prefix}_greedy_tour")).to_i64_vec();
        let picked: Vec<f32> = (0..b * n).map(|r| want[r * n + tour[r] as usize]).collect();
        let err = max_rel_err(&what, &output(&outs, "step_logp").to_f32_vec(), &picked);
        assert!(
            err <= 1e-4,
            "{what}: {prefix} teacher-forced greedy steps: relative error {err:e}"
        );
    }
    for (prefix, weights, set) in [
        ("hull", "weights_hull.safetensors", TRAINED),
        ("rnd_hull", "weights_random.safetensors", &[][..]),
        (
            "rnd_hull_free",
            "weights_random.safetensors",
            &[("hull_no_repeat", "false")][..],
        ),
    ] {
        let mut e = engine(weights, set, backend);
        let pts = get(&g, &format!("{prefix}_points"));
        worst = worst.max(check_entry(
            &mut e,
            &g,
            &what,
            "hull",
            vec![("points", pts)],
            prefix,
            &["hull", "lengths", "logp"],
        ));
    }
    worst
}

#[test]
fn cpu_backend_matches_the_pytorch_goldens() {
    let worst = check_goldens(Backend::Cpu);
    eprintln!("cpu: largest relative error against the goldens {worst:e}");
}

#[test]
fn interpreter_matches_the_pytorch_goldens() {
    let worst = check_goldens(Backend::Interp);
    eprintln!("interp: largest relative error against the goldens {worst:e}");
}

// ---------------------------------------------------------------- structural invariants

/// xorshift64*: deterministic points in the unit square without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 40) as f32 / (1u64 << 24) as f32
    }

    fn points(&mut self, b: usize, n: usize) -> Tensor {
        Tensor::from_f32(&[b, n, 2], (0..b * n * 2).map(|_| self.next_f32()).collect())
    }
}

fn is_permutation(row: &[i64]) -> bool {
    let mut seen = vec![false; row.len()];
    row.iter()
        .all(|&j| (0..row.len() as i64).contains(&j) && !std::mem::replace(&mut seen[j as usize], true))
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1.0)
}

/// `trained`: the weights make confident decisions. Random weights give nearly uniform pointer
/// distributions, where adding the running beam score can round two candidates to the same value
/// and flip a near-tie, so "beam width 1 is greedy" is checked on trained weights only.
fn check_tsp_invariants(weights: &str, set: &[(&str, &str)], trained: bool, rng: &mut Rng) {
    let mut e = engine(weights, set, Backend::Cpu);
    let mut set1 = set.to_vec();
    set1.push(("beam_width", "1"));
    let mut e1 = engine(weights, &set1, Backend::Cpu);
    let (b, k) = (16, 3);
    for n in [5, 10, 20] {
        let what = format!("{weights}, N = {n}");
        let pts = rng.points(b, n);
        let g = run(&mut e, "greedy", &[("points", pts.clone())]);
        let (tour, logp) = (output(&g, "tour").to_i64_vec(), output(&g, "logp").to_f32_vec());
        for r in 0..b {
            assert!(
                is_permutation(&tour[r * n..][..n]),
                "{what}: greedy tour {r} is not a permutation"
            );
        }
        // Teacher forcing the greedy tour gives its log-probability.
        let s = run(
            &mut e,
            "scores",
            &[("points", pts.clone()), ("tour", output(&g, "tour").clone())],
        );
        let slogp = output(&s, "logp").to_f32_vec();
        for r in 0..b {
            assert!(
                close(slogp[r], logp[r]),
                "{what}: scores(greedy tour) {} != greedy logp {}",
                slogp[r],
                logp[r]
            );
        }
        // Beam width 1 is greedy.
        let g1 = run(&mut e1, "beam", &[("points", pts.clone())]);
        let (tour1, score1) = (output(&g1, "tour").to_i64_vec(), output(&g1, "score").to_f32_vec());
        for r in 0..b {
            let (t1, t) = (&tour1[r * n..][..n], &tour[r * n..][..n]);
            assert!(is_permutation(t1), "{what}: beam width 1 tour {r} is not a permutation");
            if trained {
                assert_eq!(t1, t, "{what}: beam width 1 != greedy (row {r})");
                assert!(
                    close(score1[r], logp[r]),
                    "{what}: beam width 1 score {} != greedy {}",
                    score1[r],
                    logp[r]
                );
            }
        }
        // Beams: permutations, sorted best first, the best is `tour`, each score is the beam's
        // teacher-forced log-probability.
        let bm = run(&mut e, "beam", &[("points", pts.clone())]);
        let beams = output(&bm, "beams");
        assert_eq!(beams.shape(), &[b, k, n]);
        let (beams_v, scores) = (beams.to_i64_vec(), output(&bm, "beam_scores").to_f32_vec());
        assert_eq!(
            output(&bm, "tour").to_i64_vec(),
            (0..b)
                .flat_map(|r| beams_v[r * k * n..][..n].to_vec())
                .collect::<Vec<_>>()
        );
        let flat = Tensor::from_i64(&[b * k, n], beams_v.clone());
        let pts_k: Vec<f32> = (0..b)
            .flat_map(|r| {
                let row = pts.as_f32().unwrap()[r * n * 2..][..n * 2].to_vec();
                std::iter::repeat_n(row, k).flatten()
            })
            .collect();
        let s = run(
            &mut e,
            "scores",
            &[("points", Tensor::from_f32(&[b * k, n, 2], pts_k)), ("tour", flat)],
        );
        let beam_tf = output(&s, "logp").to_f32_vec();
        for r in 0..b {
            for q in 0..k {
                assert!(
                    is_permutation(&beams_v[(r * k + q) * n..][..n]),
                    "{what}: beam {r}/{q} is not a permutation"
                );
                assert!(
                    close(beam_tf[r * k + q], scores[r * k + q]),
                    "{what}: beam {r}/{q} score {} != teacher-forced {}",
                    scores[r * k + q],
                    beam_tf[r * k + q]
                );
                if q > 0 {
                    assert!(
                        scores[r * k + q] <= scores[r * k + q - 1],
                        "{what}: beam scores of {r} not sorted"
                    );
                }
            }
        }
        // A visited point has probability exactly 0: a tour that revisits its first point gets
        // log p = -inf at that step and only there.
        let mut rev = tour.clone();
        for r in 0..b {
            rev[r * n + n - 1] = rev[r * n];
        }
        let s = run(
            &mut e,
            "scores",
            &[("points", pts.clone()), ("tour", Tensor::from_i64(&[b, n], rev))],
        );
        let steps = output(&s, "step_logp").to_f32_vec();
        for r in 0..b {
            let row = &steps[r * n..][..n];
            assert!(
                row[..n - 1].iter().all(|x| x.is_finite() && *x <= 0.0),
                "{what}: {row:?}"
            );
            assert_eq!(
                row[n - 1],
                f32::NEG_INFINITY,
                "{what}: a revisit has probability {}",
                row[n - 1].exp()
            );
        }
    }
}

#[test]
fn tsp_decoding_invariants() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    check_tsp_invariants("weights_tsp.safetensors", TRAINED, true, &mut rng);
    check_tsp_invariants("weights_random.safetensors", &[], false, &mut rng);
}

/// Hull rows: indices in 0..=N, 1..N before the first EOS (0) and only 0 after it, `lengths` the
/// position of the first EOS, and with `no_repeat` no point twice and an EOS in every row.
fn check_hull_rows(what: &str, outs: &[(String, Tensor)], b: usize, n: usize, no_repeat: bool) {
    let hull = output(outs, "hull");
    assert_eq!(hull.shape(), &[b, n + 1], "{what}");
    let (hull, lengths, logp) = (
        hull.to_i64_vec(),
        output(outs, "lengths").to_i64_vec(),
        output(outs, "logp").to_f32_vec(),
    );
    for r in 0..b {
        let row = &hull[r * (n + 1)..][..n + 1];
        let len = row.iter().position(|&j| j == 0).unwrap_or(n + 1);
        assert_eq!(lengths[r], len as i64, "{what}: row {r} {row:?}");
        assert!(
            row[..len].iter().all(|&j| (1..=n as i64).contains(&j)),
            "{what}: row {r} {row:?}"
        );
        assert!(row[len..].iter().all(|&j| j == 0), "{what}: row {r} {row:?}");
        assert!(
            logp[r].is_finite() && logp[r] <= 0.0,
            "{what}: row {r} logp {}",
            logp[r]
        );
        if no_repeat {
            assert!(len <= n, "{what}: row {r} has no EOS: {row:?}");
            let mut seen = row[..len].to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), len, "{what}: row {r} repeats a point: {row:?}");
        }
    }
}

#[test]
fn hull_decoding_invariants() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for (weights, set, no_repeat) in [
        ("weights_hull.safetensors", TRAINED, true),
        ("weights_random.safetensors", &[][..], true),
        ("weights_random.safetensors", &[("hull_no_repeat", "false")][..], false),
    ] {
        let mut e = engine(weights, set, Backend::Cpu);
        for n in [5, 10, 20] {
            let b = 16;
            let outs = run(&mut e, "hull", &[("points", rng.points(b, n))]);
            check_hull_rows(&format!("{weights} {set:?}, N = {n}"), &outs, b, n, no_repeat);
        }
    }
}

// ---------------------------------------------------------------- accuracy against PyTorch

fn tour_length(pts: &[f32], tour: &[i64]) -> f64 {
    let n = tour.len();
    (0..n)
        .map(|i| {
            let (a, b) = (tour[i] as usize, tour[(i + 1) % n] as usize);
            let dx = f64::from(pts[2 * a]) - f64::from(pts[2 * b]);
            let dy = f64::from(pts[2 * a + 1]) - f64::from(pts[2 * b + 1]);
            (dx * dx + dy * dy).sqrt()
        })
        .sum()
}

fn scalar(f: &TensorFile, name: &str) -> f64 {
    f64::from(get(f, name).to_f32_vec()[0])
}

/// Mean closed-tour length of `tours` [B, N] over `pts` [B, N, 2], summed (not averaged).
fn total_length(pts: &[f32], tours: &[i64], b: usize, n: usize, what: &str) -> f64 {
    (0..b)
        .map(|r| {
            let t = &tours[r * n..][..n];
            assert!(is_permutation(t), "{what}: tour {r} is not a permutation: {t:?}");
            tour_length(&pts[r * n * 2..][..n * 2], t)
        })
        .sum()
}

#[test]
fn trained_models_match_pytorch_accuracy_on_1000_fresh_instances() {
    let ev = load("eval.safetensors");
    let mut tsp = engine("weights_tsp.safetensors", TRAINED, Backend::Cpu);
    let mut hull = engine("weights_hull.safetensors", TRAINED, Backend::Cpu);
    let (mut count, mut greedy_len, mut beam_len, mut opt_len) = (0usize, 0.0, 0.0, 0.0);
    let (mut same_tours, mut same_beams, mut hull_ok, mut same_hulls) = (0usize, 0usize, 0usize, 0usize);
    for n in 5..=10 {
        let pts = get(&ev, &format!("tsp_points_n{n}"));
        let b = pts.shape()[0];
        let p = pts.to_f32_vec();
        let g = run(&mut tsp, "greedy", &[("points", pts.clone())]);
        let tours = output(&g, "tour").to_i64_vec();
        greedy_len += total_length(&p, &tours, b, n, "mlc greedy");
        let bm = run(&mut tsp, "beam", &[("points", pts.clone())]);
        let btours = output(&bm, "tour").to_i64_vec();
        beam_len += total_length(&p, &btours, b, n, "mlc beam");
        opt_len += total_length(
            &p,
            &get(&ev, &format!("tsp_optimal_n{n}")).to_i64_vec(),
            b,
            n,
            "optimal",
        );
        let torch_tours = get(&ev, &format!("tsp_greedy_n{n}")).to_i64_vec();
        let torch_beams = get(&ev, &format!("tsp_beam_n{n}")).to_i64_vec();
        same_tours += (0..b)
            .filter(|&r| tours[r * n..][..n] == torch_tours[r * n..][..n])
            .count();
        same_beams += (0..b)
            .filter(|&r| btours[r * n..][..n] == torch_beams[r * n..][..n])
            .count();

        let hpts = get(&ev, &format!("hull_points_n{n}"));
        let outs = run(&mut hull, "hull", &[("points", hpts)]);
        check_hull_rows(&format!("eval hull N = {n}"), &outs, b, n, true);
        let pred = output(&outs, "hull").to_i64_vec();
        let target = get(&ev, &format!("hull_target_n{n}")).to_i64_vec();
        let torch_pred = get(&ev, &format!("hull_pred_n{n}")).to_i64_vec();
        let w = n + 1;
        hull_ok += (0..b).filter(|&r| pred[r * w..][..w] == target[r * w..][..w]).count();
        same_hulls += (0..b)
            .filter(|&r| pred[r * w..][..w] == torch_pred[r * w..][..w])
            .count();
        count += b;
    }
    assert_eq!(count, 1000);
    let c = count as f64;
    let (greedy_len, beam_len, opt_len) = (greedy_len / c, beam_len / c, opt_len / c);
    let accuracy = 100.0 * hull_ok as f64 / c;
    let torch_greedy = scalar(&ev, "tsp_mean_length_greedy");
    let torch_beam = scalar(&ev, "tsp_mean_length_beam");
    let torch_accuracy = 100.0 * scalar(&ev, "hull_accuracy");
    eprintln!(
        "TSP n=5..10, mean tour length: mlc greedy {greedy_len:.4} (PyTorch {torch_greedy:.4}), beam 3 {beam_len:.4} \
         (PyTorch {torch_beam:.4}), optimal {opt_len:.4}; same tours as PyTorch: greedy {same_tours}/1000, beam \
         {same_beams}/1000\nconvex hull n=5..10, exact accuracy: mlc {accuracy:.1}% (PyTorch {torch_accuracy:.1}%); same \
         sequences as PyTorch {same_hulls}/1000"
    );
    assert!(
        (opt_len / scalar(&ev, "tsp_mean_length_optimal") - 1.0).abs() < 1e-5,
        "optimal lengths"
    );
    assert!(
        (greedy_len / torch_greedy - 1.0).abs() <= 0.01,
        "greedy tour length {greedy_len} vs PyTorch {torch_greedy}"
    );
    assert!(
        (beam_len / torch_beam - 1.0).abs() <= 0.01,
        "beam tour length {beam_len} vs PyTorch {torch_beam}"
    );
    assert!(
        (accuracy - torch_accuracy).abs() <= 1.0,
        "hull accuracy {accuracy}% vs PyTorch {torch_accuracy}%"
    );
    // The trained models are better than chance by a wide margin (a random tour of 10 points is
    // about 5.2 long): the weights really are trained.
    assert!(greedy_len <= 1.1 * opt_len, "greedy {greedy_len} vs optimal {opt_len}");
}
