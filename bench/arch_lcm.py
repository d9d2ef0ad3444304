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

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arch_common as common  # noqa: E402

ref = common.reference("lcm")

CONFIGS = {
    "test": dict(ref.CFG, N=3),
    "medium": dict(ref.CFG, D=1024, d=256, heads=8, ffn=1024, ctx_layers=2, denoiser_layers=4, steps=40, N=8),
}
ENTRIES = {"generate": "Two-Tower", "generate_base": "Base-LCM"}


def mlc_ms(mlc, c, entry, b, threads, iters):
    sets = dict(sonar_dim=c["D"], d=c["d"], heads=c["heads"], ffn=c["ffn"], base_layers=c["base_layers"],
                ctx_layers=c["ctx_layers"], denoiser_layers=c["denoiser_layers"], steps=c["steps"],
                max_new=c["max_new"], stop_threshold=2.0)
    return common.mlc_ms(mlc, "lcm", entry, f"B={b},N={c['N']}", threads, iters, sets)


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
    return common.torch_ms(fn, iters)


def main():
    ap = common.argparser(__doc__, iters=10, configs="test,medium")
    ap.add_argument("--entries", default="generate,generate_base")
    args = common.parse_args(ap)
    common.print_header("Large Concept Model generation (4 new sentences), random weights", args.iters,
                        ["model", "config", "batch", "threads", "PyTorch eager (ms)", "mlc cpu (ms)", "speed-up"], 2)
    for entry in args.entries.split(","):
        for name in args.configs.split(","):
            c = CONFIGS[name]
            for threads, b in common.threads_and_batches(args):
                t_ms = torch_ms(c, entry, b, threads, args.iters)
                m_ms, line = mlc_ms(args.mlc, c, entry, b, threads, args.iters)
                common.print_row([ENTRIES[entry], name, b, threads, f"{t_ms:.3f}", f"{m_ms:.3f}",
                                  common.speedup(t_ms, m_ms)], line, args)


if __name__ == "__main__":
    main()
