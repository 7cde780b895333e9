#!/usr/bin/env bash
# Reproduces BENCHMARKS.md "The default plan by world size":
#   bench/plan_sizes.sh                       # 10, 1000 and 10000 items, every plan
#   bench/plan_sizes.sh --sizes 10,1000 --plans auto --runs 3
# Builds the release r4-devserver and r4-exec (each alone, as bench/run.sh
# does), then runs bench/plan_sizes.py with the arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p r4-devserver --bins
    cargo build --release -p r4-exec --bin r4-exec
fi
exec python3 bench/plan_sizes.py "$@"
