#!/usr/bin/env bash
# Builds a fully static r4-exec (static glibc: no dynamic loader, no NSS, no
# files needed at run time) for FROM-scratch images, and checks it.
#   packaging/build-static.sh            -> target/x86_64-unknown-linux-gnu/release/r4-exec
# Budget: 6 MiB. DNS goes through hickory (src/client/dns.rs), CA roots are
# bundled (webpki-roots), randomness comes from aws-lc (getrandom(2)).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    cargo build --release --locked --target "$target" -p r4-exec --bin r4-exec
bin="target/$target/release/r4-exec"
file "$bin"
file "$bin" | grep -q 'statically linked' || { echo "not statically linked" >&2; exit 1; }
size=$(stat -c %s "$bin")
budget=$((6 * 1024 * 1024))
echo "size: $size bytes (budget $budget)"
[ "$size" -le "$budget" ] || { echo "over the 6 MiB budget" >&2; exit 1; }
