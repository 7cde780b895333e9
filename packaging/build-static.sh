#!/usr/bin/env bash
# Builds a fully static r4-exec (static glibc: no dynamic loader, no NSS, no
# files needed at run time) for FROM-scratch images, and checks it.
#   packaging/build-static.sh            -> target/x86_64-unknown-linux-gnu/release/r4-exec
# Budget: 6 MiB. DNS goes through hickory (src/client/dns.rs), CA roots are
# bundled (webpki-roots), randomness comes from aws-lc (getrandom(2)).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# AWS_LC_SYS_SMALL=1: AWS-LC without its AVX-512 code and large precomputed
# tables (-1.2 MiB; RSA unwraps slower on CPUs with AVX-512 IFMA, see
# BENCHMARKS.md). It overrides the fast default of .cargo/config.toml.
# AWS_LC_SYS_SMALL=0 packaging/build-static.sh builds the fast variant
# instead (about 7.4 MB), for which the size budget is not checked.
small=${AWS_LC_SYS_SMALL:-1}
# The Rust code at opt-level "z" (the release profile's "s" elsewhere): about
# 290 KB smaller; start-up time is spent in AWS-LC (C, unaffected) and the
# network, see BENCHMARKS.md. Override with CARGO_PROFILE_RELEASE_OPT_LEVEL.
CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z} \
AWS_LC_SYS_SMALL=$small \
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    cargo build --release --locked --target "$target" -p r4-exec --bin r4-exec
bin="${CARGO_TARGET_DIR:-target}/$target/release/r4-exec"
file "$bin"
file "$bin" | grep -q 'statically linked' || { echo "not statically linked" >&2; exit 1; }
size=$(stat -c %s "$bin")
budget=$((6 * 1024 * 1024))
if [ "$small" = 0 ]; then
    echo "size: $size bytes (fast variant: AWS_LC_SYS_SMALL=0, budget not checked)"
    exit 0
fi
echo "size: $size bytes (budget $budget)"
[ "$size" -le "$budget" ] || { echo "over the 6 MiB budget" >&2; exit 1; }
