#!/usr/bin/env bash
# Reproduces BENCHMARKS.md "A fleet of starts":
#   bench/fleet.sh                                   # 1, 100, 1000 items; 1000 sequential, 100 concurrent
#   bench/fleet.sh --sizes 100 --sequential 200 --concurrent 50
# Builds the release r4-devserver and r4-exec (each alone), then runs
# bench/fleet.py with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p r4-devserver --bins
    cargo build --release -p r4-exec --bin r4-exec
fi
exec python3 bench/fleet.py "$@"
