#!/usr/bin/env python3
"""Generative Marginalization Models: latency of `log_marginal` (one marginal query per row: the
trunk and the marginal head on the batch, plus log Z) and of `sample` (any-order sampling, D
full network passes with Gumbel-max), mlc (`--backend cpu`) beside the PyTorch eager reference
(examples/marginalization/reference.py), same configuration, random weights, batch 1 and 16,
1 and 2 threads. Prints a Markdown table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_marginalization.py [--iters 20] [--batches 1,16] [--threads 1,2] [--configs test,medium]

Configurations: `test` is model.dsl's default (D = 8, K = 4, d = 32, 2 layers, 4 heads);
`medium` is D = 32, K = 8, d = 128, 4 layers, 4 heads, MLP and marginal hidden 512. Each figure
is the median of `--iters` timed runs after one warm-up run. The PyTorch sampler is the same
procedure as model.dsl's with torch's own RNG (reference.py's numpy Philox would only add time
that is not the model's).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "marginalization"))
import reference as ref  # noqa: E402

CONFIGS = {
    "test": dict(D=8, K=4, d=32, layers=2, heads=4, mlp=128, marg_hidden=128),
    "medium": dict(D=32, K=8, d=128, layers=4, heads=4, mlp=512, marg_hidden=512),
}


def configure(c):
    """Points reference.py's module constants at configuration `c`."""
    ref.D, ref.K, ref.DM, ref.LAYERS, ref.HEADS = c["D"], c["K"], c["d"], c["layers"], c["heads"]
    ref.MLP, ref.MARG_HIDDEN, ref.UNKNOWN = c["mlp"], c["marg_hidden"], c["K"]


def mlc_ms(mlc, entry, c, b, threads, iters):
    sets = []
    for k in ["D", "K", "d", "layers", "heads", "mlp", "marg_hidden"]:
        sets += ["--set", f"{k}={c[k]}"]
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", "marginalization"), "--entry", entry, "--backend", "cpu",
           "--bind", f"B={b}", "--range", f"x={c['K'] + 1}", "--iters", str(iters), "--threads", str(threads)] + sets
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


def torch_sample(m, x, gen):
    """model.dsl's `sample` with torch's RNG: σ = argsort of uniforms (observed last), then D
    steps of trunk + conditional head, Gumbel-max at σ(t), write if still "?"."""
    b, d = x.shape
    u = torch.rand(b, d, generator=gen)
    order = torch.argsort(torch.where(x == ref.UNKNOWN, u, u - 1.0), dim=1, descending=True)
    xs, logp, rows = x.clone(), torch.zeros(b), torch.arange(b)
    for t in range(d):
        p = order[:, t]
        lp_p = m.cond_logp(m.trunk(xs))[rows, p]
        g = -torch.log(-torch.log(torch.rand(lp_p.shape, generator=gen).clamp_min(2.0 ** -24)))
        v = (lp_p + g).argmax(-1)
        old = xs[rows, p]
        free = old == ref.UNKNOWN
        xs[rows, p] = torch.where(free, v, old)
        logp = logp + torch.where(free, lp_p[rows, v], 0.0)
    return xs, order, logp


def torch_ms(entry, c, b, threads, iters):
    torch.set_num_threads(threads)
    configure(c)
    torch.manual_seed(0)
    m = ref.MaM().eval()
    x = torch.randint(0, c["K"] + 1, (b, c["D"]))
    gen = torch.Generator().manual_seed(1)
    if entry == "log_marginal":
        fn = lambda: ref.log_marginal(m, x)  # noqa: E731
    else:
        fn = lambda: torch_sample(m, x, gen)  # noqa: E731
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
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--configs", default="test,medium")
    ap.add_argument("--entries", default="log_marginal,sample")
    ap.add_argument("--json", action="store_true", help="also print mlc's JSON lines")
    args = ap.parse_args()
    if not os.path.exists(args.mlc):
        sys.exit(f"{args.mlc} not found: cargo build --release -p mlc-compiler")
    print(f"Generative Marginalization Models, random weights; median of {args.iters} runs "
          f"(torch {torch.__version__})\n")
    print("| config | entry | batch | threads | PyTorch eager (ms) | mlc cpu (ms) | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for entry in args.entries.split(","):
            for threads in [int(t) for t in args.threads.split(",")]:
                for b in [int(x) for x in args.batches.split(",")]:
                    t_ms = torch_ms(entry, c, b, threads, args.iters)
                    m_ms, line = mlc_ms(args.mlc, entry, c, b, threads, args.iters)
                    print(f"| {name} | `{entry}` | {b} | {threads} | {t_ms:.3f} | {m_ms:.3f} | {t_ms / m_ms:.1f}× |",
                          flush=True)
                    if args.json:
                        print(json.dumps(line), file=sys.stderr)


if __name__ == "__main__":
    main()
