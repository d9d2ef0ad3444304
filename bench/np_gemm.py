#!/usr/bin/env python3
"""numpy's SGEMM, and PyTorch's where torch is installed, on the shapes of
kernels/examples/gemm_bench.rs, as JSON lines.

Run by bench/gemm.sh. Columns: `rowmajor` is `a @ b` with b as [K,N]; `transposed` is
`a @ w.T` with w as [N,K] (a Linear weight). numpy's threads are set with threadpoolctl,
PyTorch's with `torch.set_num_threads`.
"""
import argparse
import json
import time

import numpy as np

try:
    import threadpoolctl
except ImportError:  # pragma: no cover - gemm.sh installs it
    threadpoolctl = None

try:
    import torch
except ImportError:  # PyTorch is optional: its columns stay empty without it
    torch = None


def best_time(budget, f):
    f()
    start = time.perf_counter()
    best = float("inf")
    runs = 0
    while runs < 3 or (time.perf_counter() - start < budget and runs < 10000):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
        runs += 1
    return best


def shapes():
    out = [(s, s, s) for s in (64, 128, 256, 512, 1024, 2048)]
    out += [(m, kn, kn) for m in (1, 4, 16) for kn in (256, 1024, 4096)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    budget = 0.15 if args.quick else 0.4
    info = threadpoolctl.threadpool_info() if threadpoolctl else []
    blas = [i for i in info if i.get("user_api") == "blas"]
    print(json.dumps({"kind": "npmeta", "numpy": np.__version__, "blas": blas,
                      "torch": torch.__version__ if torch is not None else None}))
    rng = np.random.default_rng(0)
    for threads in [int(t) for t in args.threads.split(",")]:
        ctx = threadpoolctl.threadpool_limits(threads) if threadpoolctl else None
        try:
            for m, k, n in shapes():
                a = rng.random((m, k), dtype=np.float32) - 0.5
                b = rng.random((k, n), dtype=np.float32) - 0.5
                w = rng.random((n, k), dtype=np.float32) - 0.5
                c = np.empty((m, n), dtype=np.float32)
                flops = 2.0 * m * n * k
                t_row = best_time(budget, lambda: np.matmul(a, b, out=c))
                t_t = best_time(budget, lambda: np.matmul(a, w.T, out=c))
                print(json.dumps({"kind": "numpy", "m": m, "k": k, "n": n, "threads": threads,
                                  "rowmajor": flops / t_row / 1e9, "transposed": flops / t_t / 1e9}),
                      flush=True)
                if torch is not None:
                    torch.set_num_threads(threads)
                    ta, tb, tw, tc = (torch.from_numpy(x) for x in (a, b, w, c))
                    with torch.inference_mode():
                        t_row = best_time(budget, lambda: torch.matmul(ta, tb, out=tc))
                        t_t = best_time(budget, lambda: torch.matmul(ta, tw.T, out=tc))
                    print(json.dumps({"kind": "torch", "m": m, "k": k, "n": n, "threads": threads,
                                      "rowmajor": flops / t_row / 1e9, "transposed": flops / t_t / 1e9}),
                          flush=True)
        finally:
            if ctx is not None:
                ctx.unregister() if hasattr(ctx, "unregister") else ctx.restore_original_limits()


if __name__ == "__main__":
    main()
