#!/usr/bin/env bash
# Runs every test of Calamus: formatting, lints, unit tests, the storage conformance
# suite on both backends, the sqllogictest suites and the property tests.
#
# The build goes to $CARGO_TARGET_DIR, by default a persistent folder outside the
# checkout (a cold build compiles RocksDB's C++ for ~15 minutes; later runs reuse it).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/calamus/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A test run builds each crate once: incremental caches would only grow the target
# directory (by gigabytes over many runs).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
