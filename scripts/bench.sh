#!/usr/bin/env bash
# The benchmark: builds the release binaries, starts a server over a temporary data
# directory on a free loopback port (RocksDB; CALAMUS_BENCH_STORAGE=sled for sled), starts a
# throwaway PostgreSQL next to it when one is installed (the per-user baseline), runs
# `calamus-bench` against them and leaves report.json and report.html in ./bench-report.
# Arguments go to calamus-bench (e.g. --scenario insert,lookup --iterations 200); see
# `calamus-bench --help` and docs/benchmarks.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh" >&2
# Release builds live apart from the debug builds of the tests, so neither evicts the other.
export CARGO_TARGET_DIR="${CALAMUS_BENCH_TARGET_DIR:-$HOME/.cache/calamus/bench-target}"
storage="${CALAMUS_BENCH_STORAGE:-rocksdb}"
cargo build --quiet --locked --release --manifest-path "$root/Cargo.toml" -p calamus -p calamus-bench >&2
bin="$CARGO_TARGET_DIR/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/calamus-bench.XXXXXX")"
server_pid=""
pg_data=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$pg_data" ] && runuser_pg pg_ctl -D "$pg_data" -m fast stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# PostgreSQL refuses to run as root: run its tools as the postgres user then.
runuser_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port="$(free_port)"
"$bin/calamus" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --storage "$storage" \
  --log-level warn >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

postgres_args=()
if [ -n "${CALAMUS_BENCH_POSTGRES:-}" ]; then
  postgres_args=(--postgres "$CALAMUS_BENCH_POSTGRES")
elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null && [ "${CALAMUS_BENCH_NO_POSTGRES:-}" = "" ]; then
  pg_data="$work/pg"
  mkdir -p "$pg_data"
  [ "$(id -u)" = 0 ] && chown postgres "$work" "$pg_data"
  pg_port="$(free_port)"
  runuser_pg initdb -D "$pg_data" --auth=trust -U postgres >"$work/pg-init.log" 2>&1
  runuser_pg pg_ctl -D "$pg_data" -l "$pg_data/log" -w \
    -o "-p $pg_port -k $pg_data -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  postgres_args=(--postgres "host=127.0.0.1 port=$pg_port user=postgres dbname=postgres")
  echo "PostgreSQL $(postgres --version | awk '{print $NF}') started on port $pg_port for the baseline" >&2
fi

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$bin/calamus-bench" --url "http://127.0.0.1:$port" --backend "$storage" --commit "$commit" \
  --out "$root/bench-report" "${postgres_args[@]}" "$@"
