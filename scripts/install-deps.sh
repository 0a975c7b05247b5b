#!/usr/bin/env bash
# Installs the Debian packages xdp-tcp builds, tests and benchmarks with,
# once: dpkg tells which are present, so a second run skips apt entirely.
# Sourced or run by scripts/test.sh and scripts/demo.sh.
#  - BPF build (libbpf-cargo, libxdp-sys): clang llvm libelf-dev zlib1g-dev
#    pkg-config m4 make libbpf-dev
#  - testbed, interop tests, bench and demo: iproute2 ethtool nftables
#    iputils-ping curl wrk python3 util-linux (taskset)
set -euo pipefail

APT_PACKAGES=(build-essential pkg-config clang llvm libelf-dev zlib1g-dev m4 make libbpf-dev
  iproute2 ethtool nftables iputils-ping curl wrk python3 util-linux)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  printf '\n== installing %s ==\n' "${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install a Rust toolchain (1.85 or newer) with rustup and re-run" >&2
  exit 1
fi
