#!/usr/bin/env python3
"""Prints the table of bench/bandwidth.sh from its JSON lines (best median of all rounds)."""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def main():
    runs = load(sys.argv[1])
    copies = load(sys.argv[2])
    best = {}
    for r in runs:
        key = (r["model"], r["threads"])
        b = best.setdefault(key, {"bytes": r["bytes"], "bench": float("inf"), "steady": float("inf")})
        b["bench"] = min(b["bench"], r["bench"]["median_ms"])
        b["steady"] = min(b["steady"], r["steady"]["median_ms"])
    memcpy = {}
    for c in copies:
        memcpy[c["variant"]] = min(memcpy.get(c["variant"], float("inf")), c["median_ms"])
    cbytes = copies[0]["bytes"] if copies else 1

    def gbs(nbytes, ms):
        return nbytes / (ms * 1e-3) / 1e9

    print("memcpy reference (%d MiB copied, read + written):" % (cbytes // 2 // (1 << 20)))
    for v in ["memcpy", "memcpy_threads", "memcpy_fresh", "memcpy_fresh_4k"]:
        if v in memcpy:
            print("  %-16s %8.2f ms %7.1f GB/s" % (v, memcpy[v], gbs(cbytes, memcpy[v])))
    peak = max(gbs(cbytes, memcpy[v]) for v in ["memcpy", "memcpy_threads"] if v in memcpy)
    for (m, _t), b in best.items():
        if m == "copy":
            peak = max(peak, gbs(b["bytes"], b["steady"]))
    print()
    print("GB/s = (bytes read + written) / median time; 'x copy' compares with copy.dsl at the same")
    print("thread count, 'x peak' with the best plain copy measured here, memcpy or copy.dsl at any")
    print("thread count (%.1f GB/s)." % peak)
    print("steady: outputs reuse the previous run's allocation (Session::run_into);")
    print("mlc bench: a fresh output tensor every run (its page faults included).")
    print()
    hdr = "%-13s %3s %9s | %10s %7s | %10s %7s %7s %8s"
    print(hdr % ("model", "thr", "MB moved", "bench ms", "GB/s", "steady ms", "GB/s", "x copy", "x peak"))
    print("-" * 92)
    models = []
    for (m, _t) in best:
        if m not in models:
            models.append(m)
    for m in models:
        for (mm, t), b in sorted(best.items(), key=lambda kv: kv[0][1]):
            if mm != m:
                continue
            steady = gbs(b["bytes"], b["steady"])
            ref = best.get(("copy", t))
            xcopy = steady / gbs(ref["bytes"], ref["steady"]) if ref else float("nan")
            print(
                "%-13s %3d %9.0f | %10.2f %7.1f | %10.2f %7.1f %6.0f%% %7.0f%%"
                % (m, t, b["bytes"] / 1e6, b["bench"], gbs(b["bytes"], b["bench"]), b["steady"], steady,
                   100 * xcopy, 100 * steady / peak)
            )


if __name__ == "__main__":
    main()
