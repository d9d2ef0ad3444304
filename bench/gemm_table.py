#!/usr/bin/env python3
"""Merges the JSON lines of gemm_bench (mlc) and np_gemm.py (numpy, and PyTorch where it is
installed), best of all rounds, and prints the comparison table. Run by bench/gemm.sh."""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def main():
    mlc = load(sys.argv[1])
    npy = load(sys.argv[2])
    best = {}
    meta = {}
    npmeta = {}
    for d in mlc + npy:
        kind = d["kind"]
        if kind == "meta":
            for key, v in d.items():
                if isinstance(v, float):
                    meta[key] = max(meta.get(key, 0.0), v)
                else:
                    meta[key] = v
            continue
        if kind == "npmeta":
            npmeta = d
            continue
        key = (d["m"], d["k"], d["n"], d["threads"])
        for col in ("rowmajor", "transposed", "prepacked"):
            if col in d:
                k2 = (kind, col) + key
                best[k2] = max(best.get(k2, 0.0), d[col])
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    peak = meta.get("peak512_1") or meta.get("peak256_1") or 0.0
    print(f"CPU: {model}")
    print(f"measured FP32 peak (FMA loop): {meta.get('peak512_1', 0):.1f} GFLOP/s per core with 512-bit FMAs, "
          f"{meta.get('peak256_1', 0):.1f} with 256-bit, {meta.get('peak512_2', 0):.1f} on two cores")
    print(f"mlc kernel variant: {meta.get('variant', '?')}")
    for b in npmeta.get("blas", []):
        print(f"numpy {npmeta.get('numpy')}: {b.get('internal_api')} {b.get('version')}, "
              f"kernel {b.get('architecture')}, threading {b.get('threading_layer')}")
    print(f"PyTorch: {npmeta.get('torch') or 'not installed (its columns are empty)'}")
    keys = sorted({k[2:] for k in best}, key=lambda k: (k[3], k[0] > 16, k[0], k[1]))
    head = ("shape MxKxN", "thr", "mlc", "numpy", "ratio", "mlc W^T", "np W^T", "ratio", "mlc prepk", "vs np",
            "torch", "ratio", "pt W^T", "ratio")
    print()
    print("GFLOP/s; mlc = B given [K,N] (packed per call), W^T = B given as a Linear weight [N,K],")
    print("prepk = B packed once (PackedB); ratio = mlc / numpy or mlc / torch, same layout")
    print("(>= 1.00 means mlc is at least as fast)")
    print()
    print(f"{head[0]:<16}{head[1]:>4}{head[2]:>9}{head[3]:>9}{head[4]:>7}{head[5]:>9}{head[6]:>9}{head[7]:>7}"
          f"{head[8]:>10}{head[9]:>7}{head[10]:>9}{head[11]:>7}{head[12]:>9}{head[13]:>7}")
    worst = []
    for key in keys:
        m, k, n, t = key
        g = lambda kind, col: best.get((kind, col) + key, 0.0)
        row, nrow = g("mlc", "rowmajor"), g("numpy", "rowmajor")
        tr, ntr = g("mlc", "transposed"), g("numpy", "transposed")
        pk = g("mlc", "prepacked")
        r1 = row / nrow if nrow else float("nan")
        r2 = tr / ntr if ntr else float("nan")
        r3 = pk / nrow if nrow else float("nan")
        prow, ptr = g("torch", "rowmajor"), g("torch", "transposed")
        r4 = row / prow if prow else float("nan")
        r5 = tr / ptr if ptr else float("nan")
        worst += [(r1, f"{m}x{k}x{n}/{t} B[K,N] vs numpy"), (r2, f"{m}x{k}x{n}/{t} W^T vs numpy")]
        if prow:
            worst += [(r4, f"{m}x{k}x{n}/{t} B[K,N] vs torch"), (r5, f"{m}x{k}x{n}/{t} W^T vs torch")]
        print(f"{f'{m}x{k}x{n}':<16}{t:>4}{row:>9.1f}{nrow:>9.1f}{r1:>7.2f}{tr:>9.1f}{ntr:>9.1f}{r2:>7.2f}"
              f"{pk:>10.1f}{r3:>7.2f}{prow:>9.1f}{r4:>7.2f}{ptr:>9.1f}{r5:>7.2f}")
    sq = best.get(("mlc", "prepacked", 1024, 1024, 1024, 1), 0.0)
    sq_row = best.get(("mlc", "rowmajor", 1024, 1024, 1024, 1), 0.0)
    if peak:
        print()
        print(f"1024x1024x1024 on one core: {sq_row:.1f} GFLOP/s (B [K,N]) = {100 * sq_row / peak:.1f}% of the measured peak, "
              f"{sq:.1f} prepacked = {100 * sq / peak:.1f}%")
    worst.sort()
    print("lowest ratios: " + ", ".join(f"{name} {r:.2f}" for r, name in worst[:6]))


if __name__ == "__main__":
    main()
