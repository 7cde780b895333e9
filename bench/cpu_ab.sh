#!/usr/bin/env bash
# Before/after CPU of a start (BENCHMARKS.md, "Where a start's CPU goes"):
# alternating `perf stat` sets of two or more r4-exec binaries against one
# devserver world of N secrets in V vaults, so that every binary sees the
# same load; prints each one's median task-clock and page faults per start
# over SETS sets of RUNS runs, the OpenSSL floor of the world before and
# after the sets, and with VALGRIND=1 its instructions
# (valgrind, `--reap -- true`, 4 runs: deterministic to ~0.1%).
#
#   bench/cpu_ab.sh 8 /tmp/r4-exec.before target/profiling/r4-exec
#
# Build the "before" binary in a worktree of the older commit with
# `cargo build --profile profiling -p r4-exec --bin r4-exec`. Needs perf,
# openssl, python3 and target/release/r4-devserver.
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=$1; shift
N=${N:-100} V=${V:-10} RUNS=${RUNS:-20}
t="${CARGO_TARGET_DIR:-$PWD/target}"
for v in $(compgen -e | grep '^R4_' || true); do unset "$v"; done
work="$(mktemp -d)"; server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
"$1" keygen --bits 2048 --out "$work/agent.pem" >/dev/null 2>&1
openssl pkey -in "$work/agent.pem" -pubout -out "$work/agent.pub" 2>/dev/null
python3 bench/gen_seed.py "$N" "$V" "$work/agent.pub" "$work/seed.toml" "$work/r4.toml"
export R4_API_KEY="rk_bench000000000.bench-secret"
export R4_PRIVATE_KEY_FILE="$work/agent.pem" R4_CONFIG="$work/r4.toml"
"$t/release/r4-devserver" --seed "$work/seed.toml" >"$work/server.out" 2>"$work/server.err" &
server=$!
until [ -s "$work/server.out" ]; do sleep 0.05; done
R4_BASE_URL="$(head -n1 "$work/server.out")"; export R4_BASE_URL
for b in "$@"; do "$b" -- true 2>/dev/null; done   # the devserver signs its views once
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# The cryptographic floor of this world, measured by OpenSSL in this run:
# V RSA-2048 private-key operations (an OAEP unwrap is one, like a sign)
# and one PSS verify per item, wrapped key and summary (N + 2V).
floor() {
    openssl speed -seconds 1 -mr rsa2048 2>/dev/null | awk -F: -v v="$V" -v n="$N" \
        '/^\+F2:/ {printf "%.2f ms (OpenSSL rsa2048: %.3f ms a private-key operation, %.4f ms a verify)", 1000 * (v / $4 + (n + 2 * v) / $5), 1000 / $4, 1000 / $5}'
}
echo "floor before: $(floor)"
echo "load before: $(cat /proc/loadavg)"
for _ in $(seq "$SETS"); do
    for i in $(seq $#); do
        b=${!i}
        out=$(perf stat -x, -e task-clock,page-faults -r "$RUNS" "$b" -- true 2>&1 >/dev/null)
        echo "$i $(echo "$out" | grep task-clock | cut -d, -f1) $(echo "$out" | grep page-faults | cut -d, -f1)" >>"$work/sets"
    done
done
echo "load after: $(cat /proc/loadavg)"
echo "floor after: $(floor)"
for i in $(seq $#); do
    b=${!i}
    tc=$(grep "^$i " "$work/sets" | cut -d' ' -f2 | median)
    pf=$(grep "^$i " "$work/sets" | cut -d' ' -f3 | median)
    all=$(grep "^$i " "$work/sets" | cut -d' ' -f2 | sort -n | tr '\n' ' ')
    echo "$b: task-clock median $tc ms (sets: $all), page faults $pf"
    if [ -n "${VALGRIND:-}" ]; then
        for _ in 1 2 3 4; do
            valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
                "$b" --reap -- true 2>&1 | grep 'I *refs' | awk '{print $NF}'
        done | sort | tr '\n' ' ' | sed "s|^|$b: instructions |"; echo
    fi
done
