#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for SECONDS seconds each, one after another, and
# prints per target the executions, the coverage reached and the findings.
#
#   scripts/fuzz.sh 600              # ten minutes per target
#   scripts/fuzz.sh 60 gguf_load     # only the named targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants a nightly compiler; on a
# stable toolchain RUSTC_BOOTSTRAP=1 (set here unless already set) lets it use the flags it
# needs. The seeds in fuzz/corpus/<target>/ are read, never written: what the fuzzer learns
# goes to fuzz/target/corpus/<target>/ (ignored by git) and crashing inputs to
# fuzz/artifacts/<target>/. Reproduce a finding with
# `cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>` in fuzz/.
# Environment: FUZZ_JOBS (parallel fuzzing processes per target, default 1), FUZZ_NICE
# (niceness, default 19), FUZZ_SANITIZER (default none: the targets parse files in safe Rust;
# `address` also works, slower; it does not see into JIT-compiled code, whose loads and stores
# are not instrumented). compile_diff (random programs, interpreter vs CPU backend) runs a few
# executions a second, the parsers thousands; scripts/asan.sh runs the unsafe code's tests under
# AddressSanitizer. FUZZ_KEEP_GOING=1 runs libFuzzer's fork mode with -ignore_crashes (and
# timeouts, OOMs): a run goes on after a finding and saves every crashing input, which is what
# compile_diff wants when one kind of mismatch keeps coming back (FUZZ_JOBS forks then).
set -euo pipefail

if [[ $# -lt 1 || ! "$1" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
fi
seconds=$1
shift
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=${RUSTC_BOOTSTRAP:-1}
sanitizer=${FUZZ_SANITIZER:-none}
nice_level=${FUZZ_NICE:-19}
jobs=${FUZZ_JOBS:-1}

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo fuzz list)
fi

nice -n "$nice_level" cargo fuzz build --sanitizer "$sanitizer"
parallel=()
if [[ ${FUZZ_KEEP_GOING:-0} != 0 ]]; then
    parallel=(-fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
elif [[ $jobs -gt 1 ]]; then
    parallel=(-jobs="$jobs" -workers="$jobs")
fi

status=0
summary=()
for t in "${targets[@]}"; do
    work=target/corpus/$t
    mkdir -p "$work" "artifacts/$t"
    log=target/fuzz-$t.log
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "== $t: ${seconds}s"
    set +e
    nice -n "$nice_level" cargo fuzz run --sanitizer "$sanitizer" "$t" "$work" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=65536 \
        "${parallel[@]}" -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    # With FUZZ_JOBS > 1, libFuzzer's workers log to fuzz-N.log here.
    execs=$(cat "$log" fuzz-*.log 2>/dev/null | grep 'stat::number_of_executed_units' | awk '{s += $2} END {print s + 0}' || true)
    if [[ ${FUZZ_KEEP_GOING:-0} != 0 ]]; then
        # Fork mode prints `#EXECS: cov: ... crash: N ...` lines instead of the final stats.
        execs=$(grep -oE '^#[0-9]+: cov' "$log" | tail -1 | tr -dc '0-9' || true)
    fi
    cov=$(cat "$log" fuzz-*.log 2>/dev/null | grep -oE 'cov: [0-9]+' | tail -1 | awk '{print $2}' || true)
    after=$(find "artifacts/$t" -type f | wc -l)
    found=$((after - before))
    line="$t: ${seconds}s, ${execs} executions, coverage ${cov:-?}, ${found} new finding(s), exit ${rc}"
    echo "$line"
    summary+=("$line")
    if [[ $rc -ne 0 || $found -ne 0 ]]; then
        status=1
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 || true
    fi
    rm -f fuzz-*.log
done
echo
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
