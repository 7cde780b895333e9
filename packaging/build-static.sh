#!/usr/bin/env bash
# Builds a fully static r4-exec (static glibc: no dynamic loader, no NSS, no
# files needed at run time) for FROM-scratch images, and checks it.
#   packaging/build-static.sh            -> target/x86_64-unknown-linux-gnu/release/r4-exec
# Budget: 6 MiB. DNS goes through hickory (src/client/dns.rs), CA roots are
# bundled (webpki-roots), randomness comes from aws-lc (getrandom(2)).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
tdir="${CARGO_TARGET_DIR:-target}"
# AWS_LC_SYS_SMALL=1: AWS-LC without its AVX-512 code and large precomputed
# tables (-1.2 MiB). It overrides the fast default of .cargo/config.toml.
# AWS_LC_SYS_SMALL=0 packaging/build-static.sh builds the fast variant
# instead (about 7.2 MB), for which the size budget is not checked.
small=${AWS_LC_SYS_SMALL:-1}
# The size-tuned AWS-LC would also leave out the one piece of its AVX-512
# code r4-exec needs on every start: the IFMA RSA exponentiation (an
# RSA-2048 unwrap in 0.32 ms instead of 0.72 ms, one per vault). Of the
# 1.2 MiB, 680 KB are the AVX-512 AES-GCM code and ~22 KB the RSA code, and
# OPENSSL_SMALL removes all of it through one macro
# (MY_ASSEMBLER_IS_TOO_OLD_FOR_512AVX, defined by include/openssl/target.h).
# So the size-tuned build uses a copy of the aws-lc-sys source from the
# Cargo registry, under target/, in which the RSA code alone tests a macro
# of its own: the four files below, nothing else, no code changed. Cargo
# takes the copy through a path override (`paths`), which leaves Cargo.lock
# as it is (same version, same checksum in the lock). BENCHMARKS.md,
# "Static build (size-tuned AWS-LC, IFMA RSA kept)".
override=()
if [ "$small" = 1 ]; then
    ver=$(grep -A1 '^name = "aws-lc-sys"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
    sum=$(grep -A3 '^name = "aws-lc-sys"$' Cargo.lock | sed -n 's/^checksum = "\(.*\)"$/\1/p')
    copy="$tdir/aws-lc-sys-rsaz/aws-lc-sys-$ver"
    if [ ! -f "$copy/.r4-rsaz-kept" ]; then
        cargo fetch --locked --target "$target" >/dev/null
        crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"aws-lc-sys-$ver.crate" | head -n1)
        echo "$sum  $crate" | sha256sum -c --quiet - ||
            { echo "$crate is not the crate Cargo.lock pins" >&2; exit 1; }
        rm -rf "$copy"
        mkdir -p "$(dirname "$copy")"
        tar -xzf "$crate" -C "$(dirname "$copy")"
        files=(crypto/fipsmodule/bn/rsaz_exp.h)
        for k in 2 3 4; do files+=("generated-src/linux-x86_64/crypto/fipsmodule/rsaz-${k}k-avx512.S"); done
        for f in "${files[@]}"; do
            n=$(grep -c MY_ASSEMBLER_IS_TOO_OLD_FOR_512AVX "$copy/aws-lc/$f" || true)
            [ "$n" = 2 ] || { echo "aws-lc-sys $ver: $f does not gate its RSA code as expected ($n)" >&2; exit 1; }
            sed -i 's/MY_ASSEMBLER_IS_TOO_OLD_FOR_512AVX/R4_NO_IFMA_RSA/g' "$copy/aws-lc/$f"
        done
        touch "$copy/.r4-rsaz-kept"
    fi
    override=(--config "paths=[\"$(cd "$copy" && pwd)\"]")
    # Cargo fingerprints a registry crate by its version, not its files: a
    # variable its build script watches tells builds from the copy and from
    # the registry apart, so neither reuses the other's AWS-LC.
    export AWS_LC_SYS_CFLAGS="-DR4_IFMA_RSA_KEPT=1"
fi
# The Rust code at opt-level "z" (the release profile's "s" elsewhere): about
# 290 KB smaller; start-up time is spent in AWS-LC (C, unaffected) and the
# network, see BENCHMARKS.md. Override with CARGO_PROFILE_RELEASE_OPT_LEVEL.
CARGO_PROFILE_RELEASE_OPT_LEVEL=${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z} \
AWS_LC_SYS_SMALL=$small \
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    cargo build "${override[@]}" --release --locked --target "$target" -p r4-exec --bin r4-exec
bin="$tdir/$target/release/r4-exec"
file "$bin"
file "$bin" | grep -q 'statically linked' || { echo "not statically linked" >&2; exit 1; }
if [ "$small" = 1 ]; then
    # The IFMA RSA code is in (its symbols are gone with the strip; its
    # instructions are not): vpmadd52luq is the IFMA multiply.
    ifma=$(objdump -d --no-show-raw-insn "$bin" | grep -c vpmadd52luq || true)
    [ "$ifma" -gt 0 ] || { echo "the IFMA RSA code is missing" >&2; exit 1; }
fi
size=$(stat -c %s "$bin")
budget=$((6 * 1024 * 1024))
if [ "$small" = 0 ]; then
    echo "size: $size bytes (fast variant: AWS_LC_SYS_SMALL=0, budget not checked)"
    exit 0
fi
echo "size: $size bytes (budget $budget)"
[ "$size" -le "$budget" ] || { echo "over the 6 MiB budget" >&2; exit 1; }
