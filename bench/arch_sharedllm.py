#!/usr/bin/env python3
"""SharedLLM: latency of `generate` (compress the context chunks once through the lower model,
prefill the upper model's KV cache over the prompt with self-injection, then `max_new` greedy
cached steps), mlc (`--backend cpu`) beside the PyTorch eager reference
(examples/sharedllm/reference.py's `Llama.generate`, the same procedure with a growing KV
cache), same configuration, random weights, batch 1 and 16, 1 and 2 threads. Prints a Markdown
table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_sharedllm.py [--iters 10] [--batches 1,16] [--threads 1,2] [--configs test,medium]

Configurations: `test` is model.dsl's default (vocab 256, d = 64, 4 heads, N = 4 layers, M = 2,
n = 2 chunks of Lc = 64, prompt T = 32, 8 new tokens); `medium` is vocab 1024, d = 256, 8 heads
with 4 key/value heads, N = 8, M = 2, FFN 768, n = 4 chunks of 256, T = 64, 16 new tokens.
Each figure is the median of `--iters` timed runs after one warm-up run. On a shared, loaded
machine the figures are noisy; compare ratios, not absolute times.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "sharedllm"))
import reference as ref  # noqa: E402

CONFIGS = {
    "test": (ref.Config(), dict(n=2, T=32)),
    "medium": (replace(ref.Config(), vocab=1024, d=256, heads=8, kv_heads=4, n_layers=8, M=2, ffn=768, Lc=256,
                       max_new=16), dict(n=4, T=64)),
}


def mlc_ms(mlc, c, dims, b, threads, iters):
    sets = {"vocab": c.vocab, "d": c.d, "heads": c.heads, "kv_heads": c.kv_heads, "n_layers": c.n_layers, "M": c.M,
            "ffn": c.ffn, "chunk_len": c.Lc, "max_new": c.max_new}
    args = []
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", "sharedllm"), "--entry", "generate", "--backend", "cpu",
           "--bind", f"B={b},n={dims['n']},T={dims['T']}", "--range", f"context={c.vocab}", "--range",
           f"prompt={c.vocab}", "--iters", str(iters), "--threads", str(threads)] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


def torch_ms(c, dims, b, threads, iters):
    torch.set_num_threads(threads)
    llm = ref.Llama(c, ref.make_weights(c, 0))
    g = torch.Generator().manual_seed(1)
    context = torch.randint(0, c.vocab, (b, dims["n"], c.Lc), generator=g)
    prompt = torch.randint(0, c.vocab, (b, dims["T"]), generator=g)
    times = []
    with torch.inference_mode():
        llm.generate(context, prompt, False, [])  # warm-up
        for _ in range(iters):
            t = time.perf_counter()
            llm.generate(context, prompt, False, [])
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    k = len(times)
    return times[k // 2] if k % 2 else (times[k // 2 - 1] + times[k // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="test,medium")
    ap.add_argument("--json", action="store_true", help="also print mlc's JSON lines")
    args = ap.parse_args()
    if not os.path.exists(args.mlc):
        sys.exit(f"{args.mlc} not found: cargo build --release -p mlc-compiler")
    print(f"SharedLLM `generate` (context compression + prefill + greedy cached decoding), random weights; "
          f"median of {args.iters} runs (torch {torch.__version__})\n")
    print("| config | batch | threads | PyTorch eager (ms) | mlc cpu (ms) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.configs.split(","):
        c, dims = CONFIGS[name]
        for threads in [int(t) for t in args.threads.split(",")]:
            for b in [int(x) for x in args.batches.split(",")]:
                t_ms = torch_ms(c, dims, b, threads, args.iters)
                m_ms, line = mlc_ms(args.mlc, c, dims, b, threads, args.iters)
                print(f"| {name} | {b} | {threads} | {t_ms:.3f} | {m_ms:.3f} | {t_ms / m_ms:.1f}× |", flush=True)
                if args.json:
                    print(json.dumps(line), file=sys.stderr)


if __name__ == "__main__":
    main()
