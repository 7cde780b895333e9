#!/usr/bin/env bash
# Where a start's CPU goes (BENCHMARKS.md): 100 secrets in 10 vaults, 0 ms
# latency, the `profiling` build of r4-exec (release + line tables).
#
#   bench/cpu_profile.sh            # N=100 V=10 RUNS=20 PROFILE_RUNS=50
#
# Prints perf stat's task-clock per start (`-- true`, RUNS runs), one
# `-vv` run's stage timings, the profile of PROFILE_RUNS starts grouped by
# bench/cpu_groups.py, and the top symbols. Needs perf (linux-perf),
# openssl and python3. NO_BUILD=1 uses the binaries as built; EXE=PATH
# profiles another r4-exec (named r4-exec: the grouping knows its threads
# by that name), e.g. the static binary built with symbols.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100} V=${V:-10} RUNS=${RUNS:-20} PROFILE_RUNS=${PROFILE_RUNS:-50}
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p r4-devserver --bins
    cargo build --profile profiling -p r4-exec --bin r4-exec
fi
t="${CARGO_TARGET_DIR:-$PWD/target}"
exe="${EXE:-$t/profiling/r4-exec}"
for v in $(compgen -e | grep '^R4_' || true); do unset "$v"; done
work="$(mktemp -d)"; server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

"$exe" keygen --bits 2048 --out "$work/agent.pem" >/dev/null 2>&1
openssl pkey -in "$work/agent.pem" -pubout -out "$work/agent.pub" 2>/dev/null
python3 bench/gen_seed.py "$N" "$V" "$work/agent.pub" "$work/seed.toml" "$work/r4.toml"
export R4_API_KEY="rk_bench000000000.bench-secret"
export R4_PRIVATE_KEY_FILE="$work/agent.pem" R4_CONFIG="$work/r4.toml"
"$t/release/r4-devserver" --seed "$work/seed.toml" >"$work/server.out" 2>"$work/server.err" &
server=$!
until [ -s "$work/server.out" ]; do sleep 0.05; done
R4_BASE_URL="$(head -n1 "$work/server.out")"; export R4_BASE_URL
"$exe" -- true 2>/dev/null   # the devserver signs its views on first use

echo "load: $(cat /proc/loadavg)"
perf stat -e task-clock -r "$RUNS" "$exe" -- true 2>&1 >/dev/null | grep -E 'task-clock|elapsed'
ms=$(perf stat -x, -e task-clock -r "$RUNS" "$exe" -- true 2>&1 >/dev/null | grep task-clock | cut -d, -f1)
echo "task-clock per start (second set of $RUNS): $ms ms"
"$exe" -vv -- true 2>&1 | grep '\] '
perf record -q -o "$work/perf.data" --call-graph dwarf,32768 -F 5000 -- \
    sh -c "for i in \$(seq $PROFILE_RUNS); do '$exe' -- true 2>/dev/null; done" >/dev/null
perf script -i "$work/perf.data" -F comm,tid,ip,sym,dso --no-inline 2>/dev/null \
    | python3 bench/cpu_groups.py "$ms"
perf report -i "$work/perf.data" --no-children --sort dso,symbol -g none --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//' | head -25
echo "load: $(cat /proc/loadavg)"
