#!/usr/bin/env bash
# SGEMM benchmark: mlc-kernels against numpy's BLAS and PyTorch (where it is installed) on this
# machine, one table.
#
#   bench/gemm.sh [--quick] [--rounds N] [--threads 1,2]
#
# Runs kernels/examples/gemm_bench (release) and bench/np_gemm.py alternately, N rounds (default
# 2), keeps the best of each figure (other processes on a shared machine only ever slow a run
# down), and prints GFLOP/s for square sizes 64..2048 and skinny shapes M = 1, 4, 16 with
# K = N in {256, 1024, 4096}, at each thread count, with the ratios mlc / numpy, mlc / PyTorch
# and this machine's measured FP32 peak. Timings live here, never in tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=2
threads=1,2
quick=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=(--quick) ;;
        --rounds) rounds="$2"; shift ;;
        --threads) threads="$2"; shift ;;
        *) echo "usage: bench/gemm.sh [--quick] [--rounds N] [--threads 1,2]" >&2; exit 2 ;;
    esac
    shift
done

if ! python3 -c 'import numpy, threadpoolctl' 2>/dev/null; then
    python3 -m pip install --quiet numpy threadpoolctl
fi
cargo build --quiet --release -p mlc-kernels --example gemm_bench
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release/examples/gemm_bench"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
    echo "round $round of $rounds ..." >&2
    "$bin" --json --threads "$threads" "${quick[@]}" >>"$out/mlc.jsonl"
    # Some machines set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for old OpenBLAS builds; they slow a
    # current numpy down, so unset both for this command only (threadpoolctl reports the kernel).
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/np_gemm.py --threads "$threads" "${quick[@]}" >>"$out/np.jsonl"
done
python3 bench/gemm_table.py "$out/mlc.jsonl" "$out/np.jsonl"
