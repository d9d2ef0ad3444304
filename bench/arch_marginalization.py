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

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arch_common as common  # noqa: E402

ref = common.reference("marginalization")

CONFIGS = {
    "test": dict(D=8, K=4, d=32, layers=2, heads=4, mlp=128, marg_hidden=128),
    "medium": dict(D=32, K=8, d=128, layers=4, heads=4, mlp=512, marg_hidden=512),
}


def configure(c):
    """Points reference.py's module constants at configuration `c`."""
    ref.D, ref.K, ref.DM, ref.LAYERS, ref.HEADS = c["D"], c["K"], c["d"], c["layers"], c["heads"]
    ref.MLP, ref.MARG_HIDDEN, ref.UNKNOWN = c["mlp"], c["marg_hidden"], c["K"]


def mlc_ms(mlc, entry, c, b, threads, iters):
    sets = {k: c[k] for k in ["D", "K", "d", "layers", "heads", "mlp", "marg_hidden"]}
    return common.mlc_ms(mlc, "marginalization", entry, f"B={b}", threads, iters, sets, ranges=[f"x={c['K'] + 1}"])


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
    return common.torch_ms(fn, iters)


def main():
    ap = common.argparser(__doc__, iters=20, configs="test,medium")
    ap.add_argument("--entries", default="log_marginal,sample")
    args = common.parse_args(ap)
    common.print_header("Generative Marginalization Models, random weights", args.iters,
                        ["config", "entry", "batch", "threads", "PyTorch eager (ms)", "mlc cpu (ms)", "speed-up"], 2)
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for entry in args.entries.split(","):
            for threads, b in common.threads_and_batches(args):
                t_ms = torch_ms(entry, c, b, threads, args.iters)
                m_ms, line = mlc_ms(args.mlc, entry, c, b, threads, args.iters)
                common.print_row([name, f"`{entry}`", b, threads, f"{t_ms:.3f}", f"{m_ms:.3f}",
                                  common.speedup(t_ms, m_ms)], line, args)


if __name__ == "__main__":
    main()
