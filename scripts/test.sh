#!/usr/bin/env bash
# Runs every check and test of xdp-tcp from a fresh clone on Debian.
# Installs what it needs once (apt packages), then: rustfmt check, clippy
# with warnings as errors, and the whole test suite in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s ==\n' "$*"; }

# The Debian packages (once) and the check for cargo, shared with
# scripts/demo.sh.
./scripts/install-deps.sh

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --release --all-targets -- -D warnings

log "benchmarks compile"
cargo bench --no-run --quiet

log "cargo test --release"
cargo test --release -- --test-threads="$(nproc)"
