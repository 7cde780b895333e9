#!/usr/bin/env bash
# The whole flow end to end on a fresh clone: build, start r4-devserver with
# the demo seed on loopback, generate an agent key, register it, run a command
# under r4-exec that proves the secrets arrived without printing them, stop
# the server. Everything it creates lives in a temporary directory that is
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --workspace --bins
bin="$PWD/target/debug"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# 1. The development server, on a free loopback port; its first stdout line is its URL.
"$bin/r4-devserver" --seed demo >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/server.out" ] && break; sleep 0.05; done
export R4_BASE_URL="$(head -n1 "$work/server.out")"
echo "== r4-devserver listening at $R4_BASE_URL"

# 2. The demo agent's API key (documented in devserver/seeds/demo.toml).
export R4_API_KEY="rk_demo0000000000.demo-secret-do-not-use"

# 3. The agent's own key pair: generated here, never sent anywhere.
export R4_PRIVATE_KEY_FILE="$work/agent.pem"
echo "== r4-exec keygen"
"$bin/r4-exec" keygen --out "$R4_PRIVATE_KEY_FILE" --bits 2048
echo "== r4-exec register"
"$bin/r4-exec" register
echo "== r4-exec whoami"
"$bin/r4-exec" whoami

# 4. What to fetch.
cat >"$work/r4.toml" <<'TOML'
[env]
DATABASE_PASSWORD = "r4://Production Secrets/Production DB/Password"
STRIPE_KEY = "r4://Production Secrets/Stripe/secret key"
[files]
TLS_KEY_FILE = "r4://Edge/TLS/private key"
TOML
echo "== r4-exec check (verifies everything, prints no value)"
"$bin/r4-exec" -c "$work/r4.toml" check

# 5. Run a command with the secrets; it shows they arrived, not what they are.
echo "== r4-exec -- sh -c '…'"
"$bin/r4-exec" -c "$work/r4.toml" -- sh -c '
  echo "DATABASE_PASSWORD: ${#DATABASE_PASSWORD} characters, sha256 $(printf %s "$DATABASE_PASSWORD" | sha256sum | cut -c1-12)…"
  echo "STRIPE_KEY:        ${#STRIPE_KEY} characters"
  echo "TLS_KEY_FILE:      $TLS_KEY_FILE -> $(wc -c <"$TLS_KEY_FILE") bytes, read from a sealed memfd"
  echo "R4_API_KEY in my environment: ${R4_API_KEY:-no}"
  echo "my PID: $$"'
echo "== done; stopping the server"
