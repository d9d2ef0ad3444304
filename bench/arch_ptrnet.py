#!/usr/bin/env python3
"""Pointer Networks: latency of the greedy TSP decoding loop, mlc (`--backend cpu`) beside the
PyTorch eager reference (examples/ptrnet/reference.py), same configuration: N = 50 points,
hidden 256, random weights, batch 1 / 16 / 128, 1 and 2 threads. Prints a Markdown table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_ptrnet.py [--iters 20] [--batches 1,16,128] [--threads 1,2]

Each figure is the median of `--iters` timed runs after one warm-up run; one run is the whole
`greedy` entry (encoder over the N points, W1 E, N decoder steps with the visited mask).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arch_common as common  # noqa: E402

PointerNet = common.reference("ptrnet").PointerNet


def mlc_ms(mlc, b, n, hidden, threads, iters):
    return common.mlc_ms(mlc, "ptrnet", "greedy", f"B={b},N={n}", threads, iters, sets={"hidden": hidden})


def torch_ms(b, n, hidden, threads, iters):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = PointerNet(hidden=hidden).eval()
    pts = torch.rand(b, n, 2)
    return common.torch_ms(lambda: model.greedy(pts), iters)


def main():
    ap = common.argparser(__doc__, iters=20, batches="1,16,128")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--hidden", type=int, default=256)
    args = common.parse_args(ap)
    common.print_header(f"Pointer Networks greedy decoding, N = {args.n}, hidden {args.hidden}, random weights",
                        args.iters, ["batch", "threads", "PyTorch eager (ms)", "mlc cpu (ms)",
                                     "mlc µs / LSTM step (2N per run)", "speed-up"], 0)
    for threads, b in common.threads_and_batches(args):
        t_ms = torch_ms(b, args.n, args.hidden, threads, args.iters)
        m_ms, line = mlc_ms(args.mlc, b, args.n, args.hidden, threads, args.iters)
        # 2N LSTM steps (N encoder, N decoder) per run
        common.print_row([b, threads, f"{t_ms:.2f}", f"{m_ms:.3f}", f"{1e3 * m_ms / (2 * args.n):.1f}",
                          common.speedup(t_ms, m_ms)], line, args)


if __name__ == "__main__":
    main()
