#!/usr/bin/env python3
"""Masked diffusion LM (MDLM / LLaDA style): latency of `sample`, LLaDA's low-confidence
remasking sampler (S full bidirectional passes over prompt + answer, greedy, top-k commits),
mlc (`--backend cpu`) beside the PyTorch eager reference (examples/diffusion_lm/reference.py's
denoiser driven by a loop written as LLaDA's `generate.py`), same configuration, random weights,
batch 1 and 16, 1 and 2 threads. Prints a Markdown table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_diffusion_lm.py [--iters 20] [--batches 1,16] [--threads 1,2] [--configs test,medium]

Configurations: `test` is model.dsl's default (V = 32, d = 32, 2 layers, 4 heads, prompt 4 +
12 generated, 8 steps in one block); `medium` is V = 256, d = 128, 4 layers, 4 heads, FFN 384,
prompt 16 + 48 generated, 24 steps in 3 semi-autoregressive blocks of 16. Each figure is the
median of `--iters` timed runs after one warm-up run.
"""

import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arch_common as common  # noqa: E402

ref = common.reference("diffusion_lm")

CONFIGS = {
    "test": dict(V=32, d=32, layers=2, heads=4, ffn=96, P=4, gen_len=12, steps=8, block_len=12),
    "medium": dict(V=256, d=128, layers=4, heads=4, ffn=384, P=16, gen_len=48, steps=24, block_len=16),
}


def configure(c):
    """Points reference.py's module constants at configuration `c`."""
    ref.V, ref.D_MODEL, ref.LAYERS, ref.HEADS, ref.FFN = c["V"], c["d"], c["layers"], c["heads"], c["ffn"]
    ref.MASK_ID, ref.GEN_LEN, ref.STEPS = c["V"] - 1, c["gen_len"], c["steps"]


def mlc_ms(mlc, c, b, threads, iters):
    sets = {k: c[k] for k in ["V", "d", "layers", "heads", "ffn", "gen_len", "steps", "block_len"]}
    return common.mlc_ms(mlc, "diffusion_lm", "sample", f"B={b},P={c['P']}", threads, iters, sets,
                         ranges=[f"prompt={c['V'] - 1}"])


@torch.no_grad()
def generate(model, prompt, steps, gen_length, block_length, mask_id):
    """LLaDA's generate.py, temperature 0, remasking = low_confidence, no CFG."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt.clone()
    num_blocks = gen_length // block_length
    steps = steps // num_blocks
    for num_block in range(num_blocks):
        lo, hi = prompt.shape[1] + num_block * block_length, prompt.shape[1] + (num_block + 1) * block_length
        block_mask_index = x[:, lo:hi] == mask_id
        mask_num = block_mask_index.sum(dim=1, keepdim=True)
        base, remainder = mask_num // steps, mask_num % steps
        num_transfer = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
        for i in range(mask_num.size(0)):
            num_transfer[i, : remainder[i]] += 1
        for i in range(steps):
            mask_index = x == mask_id
            logits = model(x)
            logits[..., mask_id] = -math.inf  # as model.dsl: a clean token is never [M]
            x0 = torch.argmax(logits, dim=-1)
            p = F.softmax(logits, dim=-1)
            x0_p = torch.gather(p, dim=-1, index=x0.unsqueeze(-1)).squeeze(-1)
            x0_p[:, hi:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -math.inf)
            transfer_index = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                _, select_index = torch.topk(confidence[j], k=int(num_transfer[j, i]))
                transfer_index[j, select_index] = True
            x[transfer_index] = x0[transfer_index]
    return x


def torch_ms(c, b, threads, iters):
    torch.set_num_threads(threads)
    configure(c)
    torch.manual_seed(0)
    m = ref.Denoiser().eval()
    prompt = torch.randint(0, c["V"] - 1, (b, c["P"]))
    fn = lambda: generate(m, prompt, c["steps"], c["gen_len"], c["block_len"], c["V"] - 1)  # noqa: E731
    return common.torch_ms(fn, iters)


def main():
    args = common.parse_args(common.argparser(__doc__, iters=20, configs="test,medium"))
    common.print_header("Masked diffusion LM, LLaDA low-confidence sampler (`sample`, greedy), random weights",
                        args.iters, ["config", "batch", "threads", "PyTorch eager (ms)", "mlc cpu (ms)",
                                     "mlc ms / step", "speed-up"], 1)
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for threads, b in common.threads_and_batches(args):
            t_ms = torch_ms(c, b, threads, args.iters)
            m_ms, line = mlc_ms(args.mlc, c, b, threads, args.iters)
            common.print_row([name, b, threads, f"{t_ms:.3f}", f"{m_ms:.3f}", f"{m_ms / c['steps']:.3f}",
                              common.speedup(t_ms, m_ms)], line, args)


if __name__ == "__main__":
    main()
