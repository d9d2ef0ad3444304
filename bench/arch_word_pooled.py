#!/usr/bin/env python3
"""Word-pooled LM (Learn Your Tokens): latency of `generate` (encode the prompt words, prefill
the word-level LM's KV cache, then `max_new` words, each decoded character by character with the
per-word decoder, encoded and appended to the cache), mlc (`--backend cpu`) beside the PyTorch
eager reference (examples/word_pooled/reference.py's `WordPooledLM.generate`, the same nested
loops with a growing KV cache), same configuration, random weights, batch 1 and 16, 1 and 2
threads. Prints a Markdown table.

    cargo build --release -p mlc-compiler
    python3 bench/arch_word_pooled.py [--iters 10] [--batches 1,16] [--threads 1,2] [--configs test,medium]

Configurations: `test` is model.dsl's default (bytes, C0 = 8, p = 2, d = 64, 4 heads, 2 layers in
each transformer, 4 new words) after W = 16 prompt words; `medium` is d = 256, 8 heads, p = 4,
LM 4 layers, encoder/decoder 2 layers with 4 heads, 8 new words after W = 32. The reference's
end-of-word logit is suppressed so every word runs all C0 character steps; mlc's seeded random
weights almost never predict the pad either (check `--json`: the loops run to the canvas).
Each figure is the median of `--iters` timed runs after one warm-up run. On a shared, loaded
machine the figures are noisy; compare ratios, not absolute times.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "word_pooled"))
import reference as ref  # noqa: E402

CONFIGS = {
    "test": dict(d=64, heads=4, enc_heads=4, prefix=2, lm_layers=2, enc_layers=2, dec_layers=2, max_new=4, W=16),
    "medium": dict(d=256, heads=8, enc_heads=4, prefix=4, lm_layers=4, enc_layers=2, dec_layers=2, max_new=8, W=32),
}


def mlc_ms(mlc, c, b, threads, iters):
    args = []
    for k in ["d", "heads", "enc_heads", "prefix", "lm_layers", "enc_layers", "dec_layers", "max_new"]:
        args += ["--set", f"{k}={c[k]}"]
    cmd = [mlc, "bench", os.path.join(ROOT, "examples", "word_pooled"), "--entry", "generate", "--backend", "cpu",
           "--bind", f"B={b},W={c['W']}", "--iters", str(iters), "--threads", str(threads)] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["median_ms"], line


def torch_ms(c, b, threads, iters):
    torch.set_num_threads(threads)
    w = ref.make_weights(0, gain=1.0, d=c["d"], lm_layers=c["lm_layers"], enc_layers=c["enc_layers"],
                         dec_layers=c["dec_layers"], prefix=c["prefix"])
    m = ref.WordPooledLM(w, prefix=c["prefix"], heads=c["heads"], enc_heads=c["enc_heads"])
    g = torch.Generator().manual_seed(1)
    words = torch.randint(1, 256, (b, c["W"], ref.C0), generator=g)
    lengths = torch.randint(1, ref.C0 + 1, (b, c["W"]), generator=g)
    words = torch.where(torch.arange(ref.C0) < lengths[..., None], words, 0)
    # suppress the end of word: every word runs all C0 character steps
    orig = m.decode_chars
    m.decode_chars = lambda g_, u: orig(g_, u).index_fill(-1, torch.tensor([0]), float("-inf"))
    times = []
    with torch.inference_mode():
        m.generate(words, lengths, c["max_new"], [])  # warm-up
        for _ in range(iters):
            t = time.perf_counter()
            m.generate(words, lengths, c["max_new"], [])
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
    print(f"Word-pooled LM `generate` (words outside, characters inside, KV cache), random weights; "
          f"median of {args.iters} runs (torch {torch.__version__})\n")
    print("| config | batch | threads | PyTorch eager (ms) | mlc cpu (ms) | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for threads in [int(t) for t in args.threads.split(",")]:
            for b in [int(x) for x in args.batches.split(",")]:
                t_ms = torch_ms(c, b, threads, args.iters)
                m_ms, line = mlc_ms(args.mlc, c, b, threads, args.iters)
                print(f"| {name} | {b} | {threads} | {t_ms:.3f} | {m_ms:.3f} | {t_ms / m_ms:.1f}× |", flush=True)
                if args.json:
                    print(json.dumps(line), file=sys.stderr)


if __name__ == "__main__":
    main()
