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

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import arch_common as common  # noqa: E402

ref = common.reference("word_pooled")

CONFIGS = {
    "test": dict(d=64, heads=4, enc_heads=4, prefix=2, lm_layers=2, enc_layers=2, dec_layers=2, max_new=4, W=16),
    "medium": dict(d=256, heads=8, enc_heads=4, prefix=4, lm_layers=4, enc_layers=2, dec_layers=2, max_new=8, W=32),
}


def mlc_ms(mlc, c, b, threads, iters):
    sets = {k: c[k] for k in ["d", "heads", "enc_heads", "prefix", "lm_layers", "enc_layers", "dec_layers", "max_new"]}
    return common.mlc_ms(mlc, "word_pooled", "generate", f"B={b},W={c['W']}", threads, iters, sets)


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
    return common.torch_ms(lambda: m.generate(words, lengths, c["max_new"], []), iters)


def main():
    args = common.parse_args(common.argparser(__doc__, iters=10, configs="test,medium"))
    common.print_header("Word-pooled LM `generate` (words outside, characters inside, KV cache), random weights",
                        args.iters, ["config", "batch", "threads", "PyTorch eager (ms)", "mlc cpu (ms)", "speed-up"], 1)
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for threads, b in common.threads_and_batches(args):
            t_ms = torch_ms(c, b, threads, args.iters)
            m_ms, line = mlc_ms(args.mlc, c, b, threads, args.iters)
            common.print_row([name, b, threads, f"{t_ms:.3f}", f"{m_ms:.3f}", common.speedup(t_ms, m_ms)], line, args)


if __name__ == "__main__":
    main()
