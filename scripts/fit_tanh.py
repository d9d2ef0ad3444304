#!/usr/bin/env python3
"""Fits the rational tanh of the CPU backend (runtime/src/cpu/jit/vmath.rs):

    tanh(x) ~= x P(x^2) / Q(x^2)  on [-9, 9],  P and Q of degree 4, Q(0) = 1.

The relative error of tanh(x) / x is minimised by linearised least squares (Loeb: the residual
P - f Q is divided by f times the previous Q) with Lawson reweighting towards the minimax
solution, on Chebyshev-spaced and uniform points. Prints the coefficients rounded to f32 and the
fit's maximum relative error before rounding; the backend's test measures it after rounding.

    python3 scripts/fit_tanh.py [--degree-p 4] [--degree-q 4]
"""

import argparse

import mpmath
import numpy as np

LIMIT = 9.0  # beyond this, tanh(x) rounds to +-1 in f32


def fit(dp, dq, iters=60):
    mpmath.mp.dps = 40
    x = np.unique(np.concatenate([np.cos(np.linspace(0, np.pi / 2, 4000)) * LIMIT,
                                  np.linspace(1e-4, LIMIT, 4000)]))
    f = np.array([float(mpmath.tanh(mpmath.mpf(v)) / mpmath.mpf(v)) for v in x])
    s = x * x / LIMIT**2  # scaled z for conditioning
    w = np.ones_like(x)
    q_prev = np.ones_like(x)
    for _ in range(iters):
        a = np.concatenate([np.vstack([s**k for k in range(dp + 1)]).T,
                            -np.vstack([f * s**k for k in range(1, dq + 1)]).T], axis=1)
        scale = np.sqrt(w) / (f * q_prev)
        sol = np.linalg.lstsq(a * scale[:, None], f * scale, rcond=None)[0]
        p, q = sol[:dp + 1], np.concatenate([[1.0], sol[dp + 1:]])
        big_p = sum(p[k] * s**k for k in range(dp + 1))
        big_q = sum(q[k] * s**k for k in range(dq + 1))
        err = (big_p / big_q - f) / f
        q_prev = big_q
        w = w * np.abs(err) / np.mean(np.abs(err))
        w /= w.sum()
    to_z = lambda c: [float(np.float32(c[k] / LIMIT ** (2 * k))) for k in range(len(c))]  # noqa: E731
    return to_z(p), to_z(q), float(np.max(np.abs(err)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--degree-p", type=int, default=4)
    ap.add_argument("--degree-q", type=int, default=4)
    args = ap.parse_args()
    p, q, err = fit(args.degree_p, args.degree_q)
    print(f"max relative error of the fit (f64): {err:.3e}")
    print("TANH_P =", p)
    print("TANH_Q =", q)


if __name__ == "__main__":
    main()
