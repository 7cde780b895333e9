#!/usr/bin/env bash
# Builds the fully static r4-exec for arm64 (aarch64-unknown-linux-gnu), with
# the settings of packaging/build-static.sh, and checks it.
#   packaging/build-static-arm64.sh   -> target/aarch64-unknown-linux-gnu/release/r4-exec
# The cross toolchain is Debian's, not rustup's: a `debootstrap --variant=minbase
# sid` chroot with rustc, cargo, libstd-rust-dev:arm64 (the arm64 standard
# library for that rustc), gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (a
# static glibc for aarch64). It is made once, under target/cross-sid/ (kept out
# of git with the rest of target/), with the crates and the build directory
# beside it, so a second run only rebuilds what changed. Tested under
# qemu-user: tests/e2e/arm64.rs. Needs root (debootstrap, mounts, chroot).
#   R4_DEBIAN_MIRROR   the Debian mirror (default: the one of this host's apt)
#   AWS_LC_SYS_SMALL=0 the fast AWS-LC (larger; the budget is not checked)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)
target=aarch64-unknown-linux-gnu
cross=$repo/target/cross-sid
root=$cross/root
packages=(rustc cargo ca-certificates libstd-rust-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
# The mirror the host's apt uses (deb822 or one-line sources), else
# debootstrap's default.
mirror=${R4_DEBIAN_MIRROR:-$(
    { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}'; } \
        | grep -v -- '-security' | head -n 1 || true
)}

# Every command in the chroot runs in a mount namespace of its own: the
# mounts (proc, dev, the repository) vanish with it, even after a failure,
# and none is ever left under target/ for a later `rm -rf` to descend into.
# The host's CA bundle, where it has one, is the build's (cargo fetches the
# crates over HTTPS, through whatever this host trusts); never while apt may
# rewrite the chroot's own.
host_ca=
in_root() {
    local dir=$1
    shift
    unshare --mount --propagation private -- /bin/sh -ec '
        dir=$1 repo=$2 ca=$3; shift 3
        mkdir -p "$dir/src"
        mount -t proc proc "$dir/proc"
        mount --rbind /dev "$dir/dev"
        mount --bind "$repo" "$dir/src"
        cp /etc/resolv.conf "$dir/etc/resolv.conf"
        if [ -n "$ca" ]; then
            touch "$dir/etc/ssl/certs/ca-certificates.crt"
            mount --bind -o ro "$ca" "$dir/etc/ssl/certs/ca-certificates.crt"
        fi
        exec chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
            LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
    ' sh "$dir" "$repo" "$host_ca" "$@"
}

# The chroot, made once. The stamp names what it holds: a change of the
# package list makes a new one.
want="sid ${packages[*]}"
if [ "$(cat "$root/.r4-cross" 2>/dev/null)" != "$want" ]; then
    command -v debootstrap >/dev/null 2>&1 \
        || (apt-get update -qq && apt-get install -y -qq debootstrap) >/dev/null
    if findmnt -rno TARGET | grep -q "^$cross/"; then
        echo "something is mounted under $cross; not removing it" >&2
        exit 1
    fi
    rm -rf --one-file-system "$root" "$root.new"
    mkdir -p "$cross"
    echo "debootstrap sid ${mirror:+from $mirror }into $root (once)" >&2
    unshare --mount --propagation private -- \
        debootstrap --variant=minbase sid "$root.new" ${mirror:+"$mirror"} >"$cross/debootstrap.log" 2>&1 \
        || { tail -n 30 "$cross/debootstrap.log" >&2; exit 1; }
    # A mirror may serve a frozen copy of sid whose Release file is past its
    # Valid-Until date: the signature is still checked.
    echo 'Acquire::Check-Valid-Until "false";' >"$root.new/etc/apt/apt.conf.d/99r4-cross"
    in_root "$root.new" dpkg --add-architecture arm64
    in_root "$root.new" apt-get update -qq
    in_root "$root.new" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    in_root "$root.new" apt-get clean
    echo "$want" >"$root.new/.r4-cross"
    mv "$root.new" "$root"
fi

[ -s /etc/ssl/certs/ca-certificates.crt ] && host_ca=/etc/ssl/certs/ca-certificates.crt
small=${AWS_LC_SYS_SMALL:-1}
# As in build-static.sh: opt-level "z", the size-tuned AWS-LC, static glibc,
# no PIE. The build directory is target/cross-sid/target, apart from the
# host's: another rustc, whose artifacts must not mix with rustup's.
in_root "$root" /bin/sh -ec 'cd /src && exec "$@"' sh \
    env CARGO_HOME=/src/target/cross-sid/cargo-home \
    CARGO_TARGET_DIR=/src/target/cross-sid/target \
    CARGO_TERM_COLOR=never \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
    CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-z}" \
    AWS_LC_SYS_SMALL="$small" \
    RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    cargo build --release --locked --target "$target" -p r4-exec --bin r4-exec

out=${CARGO_TARGET_DIR:-target}/$target/release
mkdir -p "$out"
bin=$out/r4-exec
cp "$cross/target/$target/release/r4-exec" "$bin.new"
mv "$bin.new" "$bin"
file "$bin"
file "$bin" | grep -q 'ARM aarch64' || { echo "not an aarch64 binary" >&2; exit 1; }
file "$bin" | grep -q 'statically linked' || { echo "not statically linked" >&2; exit 1; }
size=$(stat -c %s "$bin")
budget=$((6 * 1024 * 1024))
if [ "$small" = 0 ]; then
    echo "size: $size bytes (fast variant: AWS_LC_SYS_SMALL=0, budget not checked)"
    exit 0
fi
echo "size: $size bytes (budget $budget)"
[ "$size" -le "$budget" ] || { echo "over the 6 MiB budget" >&2; exit 1; }
