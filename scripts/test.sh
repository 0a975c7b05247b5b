#!/usr/bin/env bash
# Runs every check and test of xdp-tcp from a fresh clone on Debian.
# Installs what it needs once (apt packages), then: rustfmt check, clippy
# with warnings as errors, and the whole test suite in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s ==\n' "$*"; }

# System packages the build and the tests use. Installed once: dpkg tells
# whether they are present, so a second run skips apt entirely.
#  - BPF build (libbpf-cargo, libxdp-sys): clang llvm libelf-dev zlib1g-dev
#    pkg-config m4 make libbpf-dev
#  - interop tests in namespaces: iproute2 ethtool nftables iputils-ping
#    curl wrk python3
APT_PACKAGES=(build-essential pkg-config clang llvm libelf-dev zlib1g-dev m4 make libbpf-dev
  iproute2 ethtool nftables iputils-ping curl wrk python3)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install a Rust toolchain (1.80 or newer) with rustup and re-run" >&2
  exit 1
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --release --all-targets -- -D warnings

log "benchmarks compile"
cargo bench --no-run --quiet

log "cargo test --release"
cargo test --release -- --test-threads="$(nproc)"
