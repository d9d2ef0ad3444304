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

from dataclasses import replace
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arch_common as common  # noqa: E402

ref = common.reference("sharedllm")

CONFIGS = {
    "test": (ref.Config(), dict(n=2, T=32)),
    "medium": (replace(ref.Config(), vocab=1024, d=256, heads=8, kv_heads=4, n_layers=8, M=2, ffn=768, Lc=256,
                       max_new=16), dict(n=4, T=64)),
}


def mlc_ms(mlc, c, dims, b, threads, iters):
    sets = {"vocab": c.vocab, "d": c.d, "heads": c.heads, "kv_heads": c.kv_heads, "n_layers": c.n_layers, "M": c.M,
            "ffn": c.ffn, "chunk_len": c.Lc, "max_new": c.max_new}
    return common.mlc_ms(mlc, "sharedllm", "generate", f"B={b},n={dims['n']},T={dims['T']}", threads, iters, sets,
                         ranges=[f"context={c.vocab}", f"prompt={c.vocab}"])


def torch_ms(c, dims, b, threads, iters):
    torch.set_num_threads(threads)
    llm = ref.Llama(c, ref.make_weights(c, 0))
    g = torch.Generator().manual_seed(1)
    context = torch.randint(0, c.vocab, (b, dims["n"], c.Lc), generator=g)
    prompt = torch.randint(0, c.vocab, (b, dims["T"]), generator=g)
    return common.torch_ms(lambda: llm.generate(context, prompt, False, []), iters)


def main():
    args = common.parse_args(common.argparser(__doc__, iters=10, configs="test,medium"))
    common.print_header("SharedLLM `generate` (context compression + prefill + greedy cached decoding), "
                        "random weights", args.iters,
                        ["config", "batch", "threads", "PyTorch eager (ms)", "mlc cpu (ms)", "speed-up"], 1)
    for name in args.configs.split(","):
        c, dims = CONFIGS[name]
        for threads, b in common.threads_and_batches(args):
            t_ms = torch_ms(c, dims, b, threads, args.iters)
            m_ms, line = mlc_ms(args.mlc, c, dims, b, threads, args.iters)
            common.print_row([name, b, threads, f"{t_ms:.3f}", f"{m_ms:.3f}", common.speedup(t_ms, m_ms)], line, args)


if __name__ == "__main__":
    main()
