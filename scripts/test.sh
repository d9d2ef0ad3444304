#!/usr/bin/env bash
# The project's test command (README "Run all tests"; CI runs exactly this through .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
