#!/usr/bin/env bash
# Builds the .deb: completions and man page from the clap definition, then
# cargo-deb with the metadata in Cargo.toml. Installs cargo-deb if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo run --quiet --example gen-docs -- target/docs
cargo deb -p r4-exec
