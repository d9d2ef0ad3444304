#!/usr/bin/env python3
"""Pointer Networks: latency of the greedy TSP decoding loop, mlc (`--backend cpu`) beside the
PyTorch eager reference (examples/ptrnet/reference.py), same configuration: N = 50 points,
hidden 256, random weights, batch 1 / 16 / 128, 1 and 2 threads. Prints a Markdown table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_ptrnet.py [--iters 20] [--batches 1,16,128] [--threads 1,2]

Each figure is the median of `--iters` timed runs after one warm-up run; one run is the whole
`greedy` entry (encoder over the N points, W1 E, N decoder steps with the visited mask).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "ptrnet"))
from reference import PointerNet  # noqa: E402


def mlc_ms(mlc, b, n, hidden, threads, iters):
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", "ptrnet"), "--entry", "greedy", "--backend", "cpu",
           "--bind", f"B={b},N={n}", "--set", f"hidden={hidden}", "--iters", str(iters), "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


def torch_ms(b, n, hidden, threads, iters):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = PointerNet(hidden=hidden).eval()
    pts = torch.rand(b, n, 2)
    times = []
    with torch.inference_mode():
        model.greedy(pts)  # warm-up
        for _ in range(iters):
            t = time.perf_counter()
            model.greedy(pts)
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    k = len(times)
    return times[k // 2] if k % 2 else (times[k // 2 - 1] + times[k // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batches", default="1,16,128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", action="store_true", help="also print mlc's JSON lines")
    args = ap.parse_args()
    if not os.path.exists(args.mlc):
        sys.exit(f"{args.mlc} not found: cargo build --release -p mlc-compiler")
    print(f"Pointer Networks greedy decoding, N = {args.n}, hidden {args.hidden}, random weights; "
          f"median of {args.iters} runs (torch {torch.__version__})\n")
    print("| batch | threads | PyTorch eager (ms) | mlc cpu (ms) | mlc µs / LSTM step (2N per run) | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for threads in [int(t) for t in args.threads.split(",")]:
        for b in [int(x) for x in args.batches.split(",")]:
            t_ms = torch_ms(b, args.n, args.hidden, threads, args.iters)
            m_ms, line = mlc_ms(args.mlc, b, args.n, args.hidden, threads, args.iters)
            # 2N LSTM steps (N encoder, N decoder) per run
            print(f"| {b} | {threads} | {t_ms:.2f} | {m_ms:.3f} | {1e3 * m_ms / (2 * args.n):.1f} | "
                  f"{t_ms / m_ms:.1f}× |", flush=True)
            if args.json:
                print(json.dumps(line), file=sys.stderr)


if __name__ == "__main__":
    main()
