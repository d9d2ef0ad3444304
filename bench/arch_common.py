"""Pieces shared by the bench/arch_*.py scripts: the command line, `mlc bench` runs, PyTorch
timing and the Markdown table. Import it from a script with

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import arch_common as common  # noqa: E402

so that it works whether the script runs from bench/ or from the repository root.
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = str(Path(__file__).resolve().parent.parent)


def reference(example):
    """examples/<example>/reference.py, imported as the module `reference`."""
    sys.path.insert(0, os.path.join(ROOT, "examples", example))
    return importlib.import_module("reference")


def argparser(doc, iters, batches="1,16", configs=None):
    """The options every script has (--mlc, --iters, --batches, --threads, --json), plus
    --configs when `configs` is given; the caller adds its own and calls `parse_args`."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--iters", type=int, default=iters)
    ap.add_argument("--batches", default=batches)
    ap.add_argument("--threads", default="1,2")
    if configs is not None:
        ap.add_argument("--configs", default=configs)
    ap.add_argument("--json", action="store_true", help="also print mlc's JSON lines")
    return ap


def parse_args(ap):
    """Parses the command line; exits when the mlc binary is missing."""
    args = ap.parse_args()
    if not os.path.exists(args.mlc):
        sys.exit(f"{args.mlc} not found: cargo build --release -p mlc-compiler")
    return args


def threads_and_batches(args):
    """(threads, batch) pairs of --threads and --batches, threads outermost."""
    for threads in [int(t) for t in args.threads.split(",")]:
        for b in [int(x) for x in args.batches.split(",")]:
            yield threads, b


def mlc_ms(mlc, example, entry, bind, threads, iters, sets=None, ranges=()):
    """`mlc bench examples/<example> --backend cpu` on `entry` with `--bind bind`, one
    `--range` per item of `ranges` and one `--set k=v` per item of `sets`; returns the median in
    ms and the whole JSON line mlc printed."""
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", example), "--entry", entry, "--backend", "cpu",
           "--bind", bind]
    for r in ranges:
        cmd += ["--range", r]
    cmd += ["--iters", str(iters), "--threads", str(threads)]
    for k, v in (sets or {}).items():
        cmd += ["--set", f"{k}={v}"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


def torch_ms(fn, iters):
    """The median wall time of `iters` calls of `fn` in ms, under inference mode, after one
    warm-up call."""
    times = []
    with torch.inference_mode():
        fn()  # warm-up
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    k = len(times)
    return times[k // 2] if k % 2 else (times[k // 2 - 1] + times[k // 2]) / 2


def print_header(title, iters, columns, text_columns):
    """The title line (with the run count and torch's version) and the table's header; the first
    `text_columns` columns are left-aligned, the rest right-aligned."""
    print(f"{title}; median of {iters} runs (torch {torch.__version__})\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join(["---"] * text_columns + ["---:"] * (len(columns) - text_columns)) + "|")


def speedup(t_ms, m_ms):
    """PyTorch's time over mlc's, as a table cell."""
    return f"{t_ms / m_ms:.1f}×"


def print_row(cells, line, args):
    """One table row; with --json, mlc's JSON line on standard error after it."""
    print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
    if args.json:
        print(json.dumps(line), file=sys.stderr)
