#!/usr/bin/env bash
# Memory-bandwidth benchmark of fused kernels: a fused elementwise chain, softmax and layer norm
# over tensors larger than the caches, against a plain copy. One table.
#
#   bench/bandwidth.sh [--rows N] [--iters I] [--rounds R] [--threads 1,2]
#
# Every model reads and writes f32[N, 1024] tensors (default N = 16384: 64 MiB each, twice the
# L3 of the 2-core machine this was written on). Each is timed two ways, at each thread count:
#
# - `mlc bench` (a fresh output tensor every run, as `Session::run` returns it);
# - steady state (runtime/examples/steady_bench.rs: `Session::run_into`, the output written
#   into the previous run's allocation), which is what the kernels themselves reach.
#
# GB/s = bytes read + written / median time (1 GB = 1e9 bytes), counting each input and output
# tensor once (softmax and layer norm read each row three times, but from cache). The copy
# references: `bench/models/copy.dsl` (`x + 1`, the cheapest kernel the optimiser keeps) and
# `bench/memcpy_bw.rs` (memcpy into a buffer written before, and into fresh memory). Columns:
# `x copy` = steady GB/s over copy.dsl's at the same thread count; `x peak` = over the best
# plain copy measured (memcpy or copy.dsl, any thread count). The goal: fused chains, softmax
# and layer norm at >= 80% of a plain copy.
# Best of R rounds for each figure (other processes only ever slow a run down). Timings live
# here, never in tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=16384
iters=20
rounds=2
threads=1,2
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) rows="$2"; shift ;;
        --iters) iters="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        *) echo "usage: bench/bandwidth.sh [--rows N] [--iters I] [--rounds R] [--threads 1,2]" >&2; exit 2 ;;
    esac
    shift
done

cargo build --quiet --release -p mlc-compiler --bin mlc
cargo build --quiet --release -p mlc-runtime --example steady_bench
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mlc="$target_dir/release/mlc"
steady="$target_dir/release/examples/steady_bench"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rustc --edition 2024 -O -C target-cpu=native bench/memcpy_bw.rs -o "$out/memcpy_bw"

# model name, bytes moved per element (4 per f32 input and output)
models="copy:8 chain:12 chain_minmax:12 softmax:8 layernorm:8"
max_threads=$(echo "$threads" | tr ',' '\n' | sort -n | tail -1)
for round in $(seq "$rounds"); do
    echo "round $round of $rounds ..." >&2
    for spec in $models; do
        m=${spec%%:*}
        per=${spec##*:}
        "$mlc" build "bench/models/$m.dsl" -o "$out/$m.mlcpkg" >/dev/null
        for t in ${threads//,/ }; do
            b=$("$mlc" bench "bench/models/$m.dsl" --bind "N=$rows,D=1024" --threads "$t" --iters "$iters")
            s=$("$steady" "$out/$m.mlcpkg" "N=$rows,D=1024" "$iters" "$t")
            echo "{\"model\":\"$m\",\"threads\":$t,\"bytes\":$((rows * 1024 * per)),\"bench\":$b,\"steady\":$s}" >>"$out/mlc.jsonl"
        done
    done
    "$out/memcpy_bw" $((rows * 4 / 1024)) "$iters" "$max_threads" >>"$out/memcpy.jsonl"
done
python3 bench/bandwidth_table.py "$out/mlc.jsonl" "$out/memcpy.jsonl"
