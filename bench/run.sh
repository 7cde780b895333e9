#!/usr/bin/env bash
# Reproduces the end-to-end numbers of BENCHMARKS.md:
#   bench/run.sh                 # all configurations
#   SIZES="1 100" LATENCIES=0 bench/run.sh
# For each latency (0, 50 ms) x vaults (1, 10) x secrets (1, 10, 100, 1000):
# starts the release r4-devserver with a generated seed, times `r4-exec -- true`
# with hyperfine, counts requests and sequential rounds from the request log,
# measures peak RSS, and times the floor (`env FOO=bar true`) and a plain
# sequential walk of the same API (examples/seqwalk.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1 10 100 1000"}
VAULTS=${VAULTS:-"1 10"}
LATENCIES=${LATENCIES:-"0 50"}
RUNS=${RUNS:-20}

command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine; } >/dev/null
cargo build --quiet --release --locked -p r4-exec -p r4-devserver && cargo build --quiet --release --locked -p r4-exec --example seqwalk
bin="$PWD/target/release"
work="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin/r4-exec" keygen --bits 2048 --out "$work/agent.pem" >/dev/null 2>&1
openssl pkey -in "$work/agent.pem" -pubout -out "$work/agent.pub"
export R4_API_KEY="rk_bench000000000.bench-secret" R4_PRIVATE_KEY_FILE="$work/agent.pem" R4_CONFIG="$work/r4.toml"

mean() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['mean']*1000:.1f} ± {(r['stddev'] or 0)*1000:.1f}\")" "$1"; }

hyperfine -N --warmup 5 --runs 50 --export-json "$work/floor.json" "env FOO=bar true" >/dev/null 2>&1
floor=$(mean "$work/floor.json")

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), kernel $(uname -r); $(date -u +%F); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| latency | vaults | secrets | r4-exec (ms) | floor \`env FOO=bar true\` (ms) | sequential walk (ms) | requests | rounds | peak RSS (MiB) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for lat in $LATENCIES; do
  for v in $VAULTS; do
    for n in $SIZES; do
      [ "$v" -gt "$n" ] && continue
      python3 bench/gen_seed.py "$n" "$v" "$work/agent.pub" "$work/seed.toml" "$work/r4.toml"
      : >"$work/requests.jsonl"
      "$bin/r4-devserver" --seed "$work/seed.toml" --latency-ms "$lat" --request-log "$work/requests.jsonl" \
          >"$work/server.out" 2>/dev/null &
      server=$!
      for _ in $(seq 200); do [ -s "$work/server.out" ] && break; sleep 0.05; done
      export R4_BASE_URL="$(head -n1 "$work/server.out")"
      "$bin/r4-exec" -- true 2>/dev/null || "$bin/r4-exec" -- true 2>/dev/null   # warm the server caches (retry once)
      : >"$work/requests.jsonl"
      /usr/bin/time -f %M -o "$work/rss" "$bin/r4-exec" -- true 2>/dev/null
      read -r reqs rounds < <(python3 bench/rounds.py "$work/requests.jsonl")
      rss=$(python3 -c "print(f'{int(open(\"$work/rss\").read().split()[-1])/1024:.1f}')")
      hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/r4.json" "$bin/r4-exec -- true" >/dev/null 2>&1
      walk_runs=5; [ "$lat" -gt 0 ] && [ "$n" -ge 100 ] && walk_runs=1
      hyperfine -N --runs "$walk_runs" --export-json "$work/walk.json" "$bin/examples/seqwalk" >/dev/null 2>&1
      echo "| $lat ms | $v | $n | $(mean "$work/r4.json") | $floor | $(mean "$work/walk.json") | $reqs | $rounds | $rss |"
      kill "$server"; wait "$server" 2>/dev/null || true; server=""
    done
  done
done
