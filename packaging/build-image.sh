#!/usr/bin/env bash
# Builds the r4-exec image (packaging/Dockerfile.prebuilt: FROM scratch and
# /r4-exec) for linux/amd64 and linux/arm64 from the two static binaries, and
# the multi-arch image index (a podman manifest list) holding both:
#   packaging/build-static.sh && packaging/build-static-arm64.sh
#   packaging/build-image.sh   -> localhost/r4-exec:<version> (the index),
#                                 localhost/r4-exec:<version>-amd64, -arm64
# A FROM-scratch build for another platform runs nothing, so it needs no
# emulation. Push the index with `podman manifest push --all`.
#   R4_IMAGE   the image name (default localhost/r4-exec)
# Prints the index's name. Run again, it replaces the images and the index.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "no version in Cargo.toml" >&2; exit 1; }
name=${R4_IMAGE:-localhost/r4-exec}
index=$name:$version
podman() { command podman --runtime runc "$@"; }
out=${CARGO_TARGET_DIR:-target}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
for pair in amd64:x86_64-unknown-linux-gnu arm64:aarch64-unknown-linux-gnu; do
    arch=${pair%%:*} triple=${pair#*:}
    bin=$out/$triple/release/r4-exec
    if [ ! -f "$bin" ]; then
        script=packaging/build-static.sh
        [ "$arch" = amd64 ] || script=packaging/build-static-arm64.sh
        echo "$bin is missing: run $script first" >&2
        exit 1
    fi
    mkdir -p "$context/$arch"
    cp "$bin" "$context/$arch/r4-exec"
    podman build -q --platform "linux/$arch" -f packaging/Dockerfile.prebuilt \
        -t "$index-$arch" "$context/$arch" >/dev/null
done
if podman manifest exists "$index"; then
    podman manifest rm "$index" >/dev/null
fi
podman manifest create "$index" >/dev/null
for arch in amd64 arm64; do
    podman manifest add "$index" "containers-storage:$index-$arch" >/dev/null
done
echo "$index"
