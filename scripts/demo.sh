#!/usr/bin/env bash
# The whole flow end to end on a fresh clone, against the embedded
# development server: build, start r4-devserver with the demo seed on
# loopback, create and register an agent key, see what it can read, write
# r4.toml, pin the signers, verify, run a command that proves the secrets
# arrived without printing them, stop the server. Everything it creates
# lives in a temporary directory that is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "Building r4-exec and r4-devserver (debug). The first build compiles every dependency, AWS-LC's C code included: minutes, see README"
cargo build --workspace --bins
bin="$PWD/target/debug"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

step "Starting r4-devserver --seed demo: a local R4 (one org, one agent, four vaults) on a free loopback port"
"$bin/r4-devserver" --seed demo >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/server.out" ] && break; sleep 0.05; done
# Its first stdout line is its base URL.
export R4_BASE_URL="$(head -n1 "$work/server.out")"
echo "listening at $R4_BASE_URL"
# The demo agent's API key (documented in devserver/seeds/demo.toml). On a
# real account it comes from R4's console, never from a file in the repo.
export R4_API_KEY="rk_demo0000000000.demo-secret-do-not-use"

step "r4-exec keygen: the agent's own RSA key pair; the private key never leaves this host"
export R4_PRIVATE_KEY_FILE="$work/agent.pem"
"$bin/r4-exec" keygen --out "$R4_PRIVATE_KEY_FILE" --bits 2048

step "r4-exec register: R4 gets the public half and wraps each vault's key to it"
"$bin/r4-exec" register

step "r4-exec whoami: who this API key is, and the key R4 now has for it"
"$bin/r4-exec" whoami

step "r4-exec ls: what this key can read, verified, as references (never a value)"
echo "(the warning below says nothing is pinned yet; two steps on, the signers are pinned and it is gone)"
"$bin/r4-exec" ls

step "Writing r4.toml: three references pasted from that list (r4-exec init would write one for you)"
cat >"$work/r4.toml" <<'TOML'
[env]
DATABASE_PASSWORD = "r4://Production Secrets/Production DB/Password"
STRIPE_KEY = "r4://Production Secrets/Stripe/secret key"
[files]
TLS_KEY_FILE = "r4://Edge/TLS/private key"
TOML
cat "$work/r4.toml"
export R4_CONFIG="$work/r4.toml"

step "r4-exec trust: who signs these vaults; its [trust] block goes into r4.toml"
echo "(on a real account, check each fingerprint with your R4 operator before pinning it)"
"$bin/r4-exec" trust | tee "$work/trust.txt"
sed -n '/^\[trust\]/,$p' "$work/trust.txt" >>"$work/r4.toml"

step "r4-exec check: resolve and verify every secret against the pinned signers; prints no value"
"$bin/r4-exec" check

step "r4-exec -- sh -c '…': the command runs with its secrets; it shows they arrived, not what they are"
"$bin/r4-exec" -- sh -c '
  echo "DATABASE_PASSWORD: ${#DATABASE_PASSWORD} characters, sha256 $(printf %s "$DATABASE_PASSWORD" | sha256sum | cut -c1-12)…"
  echo "STRIPE_KEY:        ${#STRIPE_KEY} characters"
  echo "TLS_KEY_FILE:      $TLS_KEY_FILE -> $(wc -c <"$TLS_KEY_FILE") bytes, read from a sealed memfd"
  echo "R4_API_KEY in my environment: ${R4_API_KEY:-no}"
  echo "my PID: $$"'

step "Done; stopping the server and removing $work"
