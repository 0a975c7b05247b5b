#!/usr/bin/env bash
# The newcomer's one command: installs what it needs once (apt packages),
# builds xdp-tcp with the measured profile (release-lto: release plus
# whole-program LTO, see Cargo.toml) and runs `xdp-tcp demo`: a veth testbed,
# `http` served on the AF_XDP fast path and on kernel sockets, the same
# clients against both, a table and an SVG chart (in demo-out/), and
# everything torn down again. Needs root (namespaces, XDP).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "error: the demo needs root (it creates network namespaces and attaches XDP): sudo $0" >&2
  exit 1
fi
./scripts/install-deps.sh
printf "\n== cargo run --profile release-lto -- demo ==\n"
exec cargo run --profile release-lto --quiet -- demo "$@"
