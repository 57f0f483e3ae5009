#!/usr/bin/env bash
# Fuzzes Calamus with cargo-fuzz (libFuzzer) on the nightly toolchain: every target of
# fuzz/ (or those named as arguments, e.g. `sql_parser row_codec`) for FUZZ_SECONDS each
# (default 60), one after the other. A target that panics, or spends more than 10 s on one
# input, leaves that input in fuzz/artifacts/<target>/ and makes the script fail once every
# target has run.
#
# Each target's corpus grows in fuzz/corpus/<target> (kept between runs, not in git), and
# starts from the inputs in fuzz/seeds/<target>. FUZZ_SANITIZER is cargo-fuzz's sanitizer:
# `none` by default (the code under test is safe Rust; a panic is what a target looks
# for), `address` to look for memory errors too (slower to build and run).
#
# The build goes to $CALAMUS_FUZZ_TARGET_DIR, by default ~/.cache/calamus/fuzz-target:
# the fuzz targets are built with their own flags, so they never share a target folder
# with the tests. fuzz/ is a workspace of its own; scripts/test.sh never builds it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Nothing here needs RocksDB (scripts/setup.sh installs what its build needs): only Rust.
if ! command -v rustup >/dev/null 2>&1; then
  echo "fuzz: rustup is missing; install Rust (https://rustup.rs) first" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CALAMUS_FUZZ_TARGET_DIR:-$HOME/.cache/calamus/fuzz-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: the nightly toolchain is missing; installing it" >&2
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing; installing it" >&2
  cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
  echo "== fuzz $target (${seconds}s)"
  mkdir -p "fuzz/corpus/$target"
  seeds=()
  if [ -d "fuzz/seeds/$target" ]; then seeds=("fuzz/seeds/$target"); fi
  if ! cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" "fuzz/corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}; the inputs are in fuzz/artifacts/" >&2
  exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
