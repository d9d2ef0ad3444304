#!/usr/bin/env python3
"""Large Concept Model: latency of the Two-Tower `generate` (sentences outside; per sentence the
contextualiser, Philox initial noise, then S guided DDIM steps on a doubled batch inside) and of
the Base-LCM `generate_base`, mlc (`--backend cpu`) beside the PyTorch eager reference
(examples/lcm/reference.py's `LCM.generate` / `LCM.generate_base`), same configuration, random
weights, batch 1 and 16, 1 and 2 threads. Prints a Markdown table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_lcm.py [--iters 10] [--batches 1,16] [--threads 1,2] [--configs test,medium]

Configurations: `test` is model.dsl's default at MiniLM's width (D = 384, d = 64, 4 heads,
2 + 2 + 2 layers, S = 4 DDIM steps, 4 new sentences after N = 3); `medium` is SONAR's width
(D = 1024), d = 256, 8 heads, 2 contextualiser and 4 denoiser layers, the paper's S = 40 steps,
4 new sentences after N = 8. Both sides run with `stop_threshold = 2` so that no row stops early
and every run does the same work. Differences in the procedures: the reference contextualises
only the sentences so far, mlc the whole preallocated buffer (causal, so the results agree); the
reference draws the Philox noise in numpy (well under 1 ms per sentence). Each figure is the
median of `--iters` timed runs after one warm-up run. On a shared, loaded machine the figures are
noisy; compare ratios, not absolute times.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "lcm"))
import reference as ref  # noqa: E402

CONFIGS = {
    "test": dict(ref.CFG, N=3),
    "medium": dict(ref.CFG, D=1024, d=256, heads=8, ffn=1024, ctx_layers=2, denoiser_layers=4, steps=40, N=8),
}
ENTRIES = {"generate": "Two-Tower", "generate_base": "Base-LCM"}


def mlc_ms(mlc, c, entry, b, threads, iters):
    sets = dict(sonar_dim=c["D"], d=c["d"], heads=c["heads"], ffn=c["ffn"], base_layers=c["base_layers"],
                ctx_layers=c["ctx_layers"], denoiser_layers=c["denoiser_layers"], steps=c["steps"],
                max_new=c["max_new"], stop_threshold=2.0)
    args = []
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", "lcm"), "--entry", entry, "--backend", "cpu",
           "--bind", f"B={b},N={c['N']}", "--iters", str(iters), "--threads", str(threads)] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


def torch_ms(c, entry, b, threads, iters):
    torch.set_num_threads(threads)
    c = dict(c, stop=2.0)
    m = ref.LCM(c, ref.make_weights(c, 0))
    g = torch.Generator().manual_seed(1)
    prompt = torch.nn.functional.normalize(torch.randn(b, c["N"], c["D"], generator=g), dim=-1)
    eot = torch.nn.functional.normalize(torch.randn(c["D"], generator=g), dim=0)
    if entry == "generate":
        fn = lambda: m.generate(prompt, eot, 7, [])  # noqa: E731
    else:
        fn = lambda: m.generate_base(prompt, eot, [])  # noqa: E731
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mlc", default=os.path.join(ROOT, "target", "release", "mlc"))
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="test,medium")
    ap.add_argument("--entries", default="generate,generate_base")
    ap.add_argument("--json", action="store_true", help="also print mlc's JSON lines")
    args = ap.parse_args()
    if not os.path.exists(args.mlc):
        sys.exit(f"{args.mlc} not found: cargo build --release -p mlc-compiler")
    print(f"Large Concept Model generation (4 new sentences), random weights; median of {args.iters} runs "
          f"(torch {torch.__version__})\n")
    print("| model | config | batch | threads | PyTorch eager (ms) | mlc cpu (ms) | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for entry in args.entries.split(","):
        for name in args.configs.split(","):
            c = CONFIGS[name]
            for threads in [int(t) for t in args.threads.split(",")]:
                for b in [int(x) for x in args.batches.split(",")]:
                    t_ms = torch_ms(c, entry, b, threads, args.iters)
                    m_ms, line = mlc_ms(args.mlc, c, entry, b, threads, args.iters)
                    print(f"| {ENTRIES[entry]} | {name} | {b} | {threads} | {t_ms:.3f} | {m_ms:.3f} | "
                          f"{t_ms / m_ms:.1f}× |", flush=True)
                    if args.json:
                        print(json.dumps(line), file=sys.stderr)


if __name__ == "__main__":
    main()
