#!/usr/bin/env bash
# Configures and builds natmesh into BUILD_DIR (default: build); the programs land in
# BUILD_DIR/bin. Extra arguments go to cmake (e.g. -DNATMESH_WITH_NETSIM=OFF).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
