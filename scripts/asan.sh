#!/usr/bin/env bash
# Runs the tests of mlc's unsafe code under AddressSanitizer (see fuzz/README.md, "Sanitizers"):
#
# - mlc-kernels: unit tests (GEMM: packing, the AVX-512, AVX2+FMA and portable micro-kernels,
#   skinny/transposed/prepacked/batched paths, epilogues; Philox; the thread pool) and
#   tests/attention.rs (blocked attention, both variants, every mask, GQA, strided views);
# - mlc-runtime: unit tests, tests/cpu_exec.rs (the plan executor: arena, buffer table, JIT
#   kernel calls, GEMM and attention steps, loops), tests/jit.rs, tests/gguf.rs,
#   tests/interp/ (the interpreter);
# - mlc-compiler: tests/concurrency.rs (one shared Model from 8 threads), tests/examples.rs
#   (every example on both backends), tests/attention_step.rs, tests/indices.rs,
#   tests/limits.rs, tests/damaged_files.rs and tests/random_graphs.rs (MLC_RANDOM_CASES, default
#   2000, random programs on both backends).
#
#   scripts/asan.sh            # all of the above
#   scripts/asan.sh kernels    # only some groups: kernels, runtime, compiler
#
# The stable toolchain ships the ASan runtime; RUSTC_BOOTSTRAP=1 lets it take -Zsanitizer.
# `--target` keeps build scripts and proc macros uninstrumented. The standard library is not
# rebuilt (that needs -Zbuild-std and rust-src), so its own code is not instrumented, but every
# heap allocation goes through ASan's allocator (redzones, use-after-free, leaks). Code that
# Cranelift generates at run time is not instrumented: its loads and stores are not checked.
# The session arena is one allocation, so an overrun from one of its buffers into the next is
# invisible to ASan even in instrumented code (only leaving the arena is seen). See the README.
#
# Environment: CARGO_TARGET_DIR (default /tmp/asan-target, apart from the normal builds, whose
# flags differ), ASAN_OPTIONS (default detect_leaks=1), ASAN_NICE (default 19),
# CARGO_BUILD_JOBS as usual.
set -euo pipefail
cd "$(dirname "$0")/.."

groups=("$@")
if [[ ${#groups[@]} -eq 0 ]]; then
    groups=(kernels runtime compiler)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
if [[ $host != x86_64-unknown-linux-gnu ]]; then
    echo "scripts/asan.sh: written for x86_64-unknown-linux-gnu, this host is $host" >&2
    exit 2
fi
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/asan-target}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
nice_level=${ASAN_NICE:-19}

status=0
run() {
    echo "== cargo test --target $host $*"
    if ! nice -n "$nice_level" cargo test --target "$host" --no-fail-fast "$@"; then
        status=1
    fi
}
for g in "${groups[@]}"; do
    case $g in
        kernels) run -p mlc-kernels --lib --tests ;;
        runtime) run -p mlc-runtime --lib --tests ;;
        compiler)
            run -p mlc-compiler --test concurrency --test examples --test attention_step --test indices \
                --test limits --test damaged_files --test random_graphs
            ;;
        *)
            echo "unknown group $g (kernels, runtime, compiler)" >&2
            exit 2
            ;;
    esac
done
exit $status
