#!/usr/bin/env bash
# Reproduces every end-to-end number of BENCHMARKS.md with one command:
#
#   bench/run.sh                                  # everything (~15 min on 2 cores)
#   SIZES="100" VAULTS="10" LATENCIES="0" bench/run.sh    # one row
#
# For each latency L (0, 50 ms) x vaults V (1, 10) x secrets N (1, 10, 100, 1000;
# V <= N), with one secret field per item (bench/gen_seed.py) and a matching
# r4.toml of explicit [env] references:
#   - starts target/release/r4-devserver --seed FILE --latency-ms L --request-log LOG
#     (the base URL is its first stdout line) and stops it afterwards;
#   - one untimed run of `r4-exec -- true` (warms the server's signed views),
#     then one run under /usr/bin/time -f %M (peak RSS) whose requests and
#     sequential rounds are read from the request log (bench/rounds.py);
#   - hyperfine -N --warmup 3 --runs 20 on `r4-exec -- true`, on the floor
#     `env FOO=bar true`, and on target/release/examples/seqwalk (a plain
#     sequential walk of the same API that verifies and decrypts the same way);
#     a seqwalk run expected to last over 2 s (50 ms latency, >= 100 secrets)
#     gets --warmup 0 --runs $SEQWALK_LONG_RUNS (default 3) instead: its time
#     is (requests x latency) by construction and varies by milliseconds.
# Prints the machine, the load, a markdown table, a linear fit of r4-exec's
# time against the number of secrets, and the targets of the issue. Raw
# hyperfine JSON, request logs and the table stay in $OUT.
#
# HTTPS rows (SCHEMES, default "http https"; HTTPS_SIZES, default "100") run the
# devserver with --tls and give r4-exec its CA as [r4] ca_file. The server's
# own time on the critical path (from the request log) is reported too.
# Knobs: SIZES, VAULTS, LATENCIES, SCHEMES, HTTPS_SIZES, RUNS (20), WARMUP (3), SEQWALK_LONG_RUNS (3),
# OUT (target/bench/<UTC time>), NO_BUILD=1 (use the binaries as built).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
SIZES=${SIZES:-"1 10 100 1000"}
VAULTS=${VAULTS:-"1 10"}
LATENCIES=${LATENCIES:-"0 50"}
# HTTPS rows (devserver --tls, its CA as r4.toml's ca_file) for these sizes.
SCHEMES=${SCHEMES:-"http https"}
HTTPS_SIZES=${HTTPS_SIZES:-"100"}
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
SEQWALK_LONG_RUNS=${SEQWALK_LONG_RUNS:-3}
OUT=${OUT:-"$root/target/bench/$(date -u +%Y%m%dT%H%M%SZ)"}
mkdir -p "$OUT"

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >/dev/null
fi

if [ -z "${NO_BUILD:-}" ]; then
    # One thing per command, the r4-exec binary last and alone: built with the
    # devserver or with examples (which pull in dev-dependencies), cargo
    # would unify the features of shared dependencies (tokio, hyper, ...)
    # into it, and it would not be the binary users install.
    cargo build --release -p r4-devserver --bins
    cargo build --release -p r4-exec --examples
    cargo build --release -p r4-exec --bin r4-exec
fi
bin="${CARGO_TARGET_DIR:-$root/target}/release"
for b in "$bin/r4-exec" "$bin/r4-devserver" "$bin/examples/seqwalk"; do
    [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done

# Nothing from the caller's environment may change what r4-exec does.
for v in $(compgen -e | grep '^R4_' || true); do unset "$v"; done

work="$(mktemp -d)"
server=""
stop_server() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        server=""
    fi
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin/r4-exec" keygen --bits 2048 --out "$work/agent.pem" >/dev/null 2>"$work/keygen.err" \
    || { cat "$work/keygen.err" >&2; exit 1; }
openssl pkey -in "$work/agent.pem" -pubout -out "$work/agent.pub" 2>/dev/null
export R4_API_KEY="rk_bench000000000.bench-secret"
export R4_PRIVATE_KEY_FILE="$work/agent.pem"
export R4_CONFIG="$work/r4.toml"

# hyperfine JSON -> "mean sd" in ms
stats() {
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("%.2f %.2f" % (r["mean"] * 1000, (r["stddev"] or 0) * 1000))
PY
}
load() { cut -d' ' -f1 /proc/loadavg; }
# CPU time used by anything on the machine over one second, in cores: the
# other work a row competes with (sampled just before the row starts).
busy() {
    local a b
    a=($(head -n1 /proc/stat)); sleep 1; b=($(head -n1 /proc/stat))
    python3 -c 'import sys
a = list(map(int, sys.argv[1].split())); b = list(map(int, sys.argv[2].split()))
d = [y - x for x, y in zip(a, b)]
idle = d[3] + d[4]
print("%.2f" % ((sum(d[:8]) - idle) / sum(d[:8]) * int(sys.argv[3])))' "${a[*]:1}" "${b[*]:1}" "$(nproc)"
}

machine="$(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), kernel $(uname -r)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
{
    echo "machine: $machine"
    echo "date:    $started"
    echo "build:   release profile (lto, opt-level \"s\", codegen-units 1, panic abort); $(rustc --version)"
    echo "source:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src devserver Cargo.toml 2>/dev/null || echo ' + uncommitted changes'); r4-exec $(sha256sum "$bin/r4-exec" | cut -c1-12), $(stat -c %s "$bin/r4-exec") bytes${AWS_LC_SYS_SMALL:+; AWS_LC_SYS_SMALL=$AWS_LC_SYS_SMALL}"
    echo "load at start: $(uptime | sed 's/.*load average: //')"
} | tee "$OUT/machine.txt"

tsv="$OUT/results.tsv"
printf 'scheme\tsecrets\tvaults\tlatency\tr4_mean\tr4_sd\tfloor_mean\tfloor_sd\twalk_mean\twalk_sd\twalk_runs\trequests\trounds\trss_kib\twalk_requests\twalk_rounds\tload\tbusy\tserver_ms\n' >"$tsv"

run_config() {
    local n=$1 v=$2 lat=$3 scheme=$4 tag="n${1}_v${2}_l${3}_${4}"
    python3 bench/gen_seed.py "$n" "$v" "$work/agent.pub" "$work/seed.toml" "$work/r4.toml"
    local tls=() ; unset R4_CA_FILE
    if [ "$scheme" = https ]; then
        tls=(--tls --ca-out "$work/ca.pem")
        { printf '[r4]\nca_file = "%s"\n' "$work/ca.pem"; cat "$work/r4.toml"; } >"$work/r4.tls"
        mv "$work/r4.tls" "$work/r4.toml"
        export R4_CA_FILE="$work/ca.pem"
    fi
    local log="$work/requests.jsonl"
    : >"$log"
    : >"$work/server.out"
    "$bin/r4-devserver" --seed "$work/seed.toml" --latency-ms "$lat" --request-log "$log" "${tls[@]}" \
        >"$work/server.out" 2>"$work/server.err" &
    server=$!
    for _ in $(seq 600); do
        [ -s "$work/server.out" ] && break
        kill -0 "$server" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
        sleep 0.05
    done
    R4_BASE_URL="$(head -n1 "$work/server.out")"
    export R4_BASE_URL
    local ld; ld="$(load) / $(busy)"

    # Warm the server (it signs its views on first use), then the counted run.
    "$bin/r4-exec" -- true 2>/dev/null || "$bin/r4-exec" -- true
    : >"$log"
    /usr/bin/time -f %M -o "$work/rss" "$bin/r4-exec" -- true 2>/dev/null
    cp "$log" "$OUT/requests_$tag.jsonl"
    local reqs rounds server_ms; read -r reqs rounds server_ms < <(python3 bench/rounds.py "$log")
    local rss; rss=$(tail -n1 "$work/rss")

    local h=(hyperfine -N --style none --export-json)
    "${h[@]}" "$OUT/r4exec_$tag.json" --warmup "$WARMUP" --runs "$RUNS" \
        "$bin/r4-exec -- true" >"$OUT/hyperfine_$tag.log" 2>&1 || { cat "$OUT/hyperfine_$tag.log" >&2; exit 1; }
    "${h[@]}" "$OUT/floor_$tag.json" --warmup "$WARMUP" --runs "$RUNS" \
        "env FOO=bar true" >>"$OUT/hyperfine_$tag.log" 2>&1

    # The sequential walk: its own requests and rounds, then its time.
    : >"$log"
    "$bin/examples/seqwalk" 2>/dev/null
    cp "$log" "$OUT/requests_seqwalk_$tag.jsonl"
    local wreqs wrounds _; read -r wreqs wrounds _ < <(python3 bench/rounds.py "$log")
    local wwarm=$WARMUP wruns=$RUNS
    if [ $((lat * wreqs)) -gt 2000 ]; then wwarm=0; wruns=$SEQWALK_LONG_RUNS; fi
    "${h[@]}" "$OUT/seqwalk_$tag.json" --warmup "$wwarm" --runs "$wruns" \
        "$bin/examples/seqwalk" >>"$OUT/hyperfine_$tag.log" 2>&1 || { cat "$OUT/hyperfine_$tag.log" >&2; exit 1; }
    stop_server

    local r f w
    r=$(stats "$OUT/r4exec_$tag.json"); f=$(stats "$OUT/floor_$tag.json"); w=$(stats "$OUT/seqwalk_$tag.json")
    local row=("$scheme" "$n" "$v" "$lat" "${r% *}" "${r#* }" "${f% *}" "${f#* }" "${w% *}" "${w#* }" "$wruns"
        "$reqs" "$rounds" "$rss" "$wreqs" "$wrounds" "${ld% / *}" "${ld#* / }" "$server_ms")
    (IFS=$'\t'; echo "${row[*]}") >>"$tsv"
    echo "done: $scheme, $n secrets, $v vaults, $lat ms (load $ld cores busy before)" >&2
}

for scheme in $SCHEMES; do
    for lat in $LATENCIES; do
        for v in $VAULTS; do
            for n in $SIZES; do
                [ "$v" -gt "$n" ] && continue
                if [ "$scheme" = https ] && ! [[ " $HTTPS_SIZES " == *" $n "* ]]; then continue; fi
                run_config "$n" "$v" "$lat" "$scheme"
            done
        done
    done
done
echo "load at end: $(uptime | sed 's/.*load average: //')" | tee -a "$OUT/machine.txt"
echo
python3 bench/report.py "$tsv" | tee "$OUT/table.md"
echo
echo "raw results: $OUT"
