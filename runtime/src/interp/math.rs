//! Scalar functions that `std` lacks.

use std::f64::consts::PI;

/// The error function, accurate to a few ulps of `f64` (far better than the `f32` it serves).
///
/// For `|x| < 3` the Maclaurin series `2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))` is summed
/// until the terms vanish (its cancellation costs at most about 1e-13 absolute at `|x| = 3`).
/// For `|x| >= 3`, `erf(x) = 1 - erfc(x)` with `erfc` from its continued fraction
/// `exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`, evaluated bottom-up over
/// 60 levels, which converges to full precision there. Odd symmetry gives negative `x`.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 3.0 {
        let x2 = a * a;
        let mut term = a; // (-1)^n x^(2n+1) / n!
        let mut sum = a;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let t = term / (2.0 * n + 1.0);
            sum += t;
            if t.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / PI.sqrt()
    } else if a < 6.0 {
        let mut t = a;
        for n in (1..=60).rev() {
            t = a + (f64::from(n) / 2.0) / t;
        }
        1.0 - (-a * a).exp() / (PI.sqrt() * t)
    } else {
        1.0 // erfc(6) < 3e-17
    };
    r.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_tabulated_values() {
        // Values from Abramowitz & Stegun table 7.1 / high-precision references.
        let table: [(f64, f64); 11] = [
            (0.0, 0.0),
            (1e-5, 1.128_379_167_057_9e-5),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (1.5, 0.966_105_146_475_310_8),
            (2.0, 0.995_322_265_018_952_7),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
            (3.5, 0.999_999_256_901_627_6),
            (4.0, 0.999_999_984_582_742_1),
        ];
        for (x, want) in table {
            for (x, want) in [(x, want), (-x, -want)] {
                let got = erf(x);
                let tol = 1e-13 * f64::max(want.abs(), 1e-300);
                assert!((got - want).abs() <= tol, "erf({x}) = {got}, want {want}");
            }
        }
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
        assert!(erf(f64::NAN).is_nan());
    }

    #[test]
    fn erf_is_continuous_at_the_switch() {
        let below = erf(3.0 - 1e-12);
        let above = erf(3.0);
        assert!((above - below).abs() < 1e-12);
    }
}
