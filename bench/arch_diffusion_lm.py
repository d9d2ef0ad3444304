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

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "diffusion_lm"))
import reference as ref  # noqa: E402

CONFIGS = {
    "test": dict(V=32, d=32, layers=2, heads=4, ffn=96, P=4, gen_len=12, steps=8, block_len=12),
    "medium": dict(V=256, d=128, layers=4, heads=4, ffn=384, P=16, gen_len=48, steps=24, block_len=16),
}


def configure(c):
    """Points reference.py's module constants at configuration `c`."""
    ref.V, ref.D_MODEL, ref.LAYERS, ref.HEADS, ref.FFN = c["V"], c["d"], c["layers"], c["heads"], c["ffn"]
    ref.MASK_ID, ref.GEN_LEN, ref.STEPS = c["V"] - 1, c["gen_len"], c["steps"]


def mlc_ms(mlc, c, b, threads, iters):
    sets = []
    for k in ["V", "d", "layers", "heads", "ffn", "gen_len", "steps", "block_len"]:
        sets += ["--set", f"{k}={c[k]}"]
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", "diffusion_lm"), "--entry", "sample", "--backend", "cpu",
           "--bind", f"B={b},P={c['P']}", "--range", f"prompt={c['V'] - 1}", "--iters", str(iters),
           "--threads", str(threads)] + sets
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


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
    ap.add_argument("--json", action="store_true", help="also print mlc's JSON lines")
    args = ap.parse_args()
    if not os.path.exists(args.mlc):
        sys.exit(f"{args.mlc} not found: cargo build --release -p mlc-compiler")
    print(f"Masked diffusion LM, LLaDA low-confidence sampler (`sample`, greedy), random weights; "
          f"median of {args.iters} runs (torch {torch.__version__})\n")
    print("| config | batch | threads | PyTorch eager (ms) | mlc cpu (ms) | mlc ms / step | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for threads in [int(t) for t in args.threads.split(",")]:
            for b in [int(x) for x in args.batches.split(",")]:
                t_ms = torch_ms(c, b, threads, args.iters)
                m_ms, line = mlc_ms(args.mlc, c, b, threads, args.iters)
                print(f"| {name} | {b} | {threads} | {t_ms:.3f} | {m_ms:.3f} | {m_ms / c['steps']:.3f} | "
                      f"{t_ms / m_ms:.1f}× |", flush=True)
                if args.json:
                    print(json.dumps(line), file=sys.stderr)


if __name__ == "__main__":
    main()
