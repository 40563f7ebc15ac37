#!/usr/bin/env bash
# Installs what natmesh needs on Debian 12, skipping what is already there.
# Used by demo.sh and test.sh; safe to run again.
set -euo pipefail

# clang and libclang-rt-14-dev (libFuzzer, the sanitizers' runtimes; only recommended by
# clang, and recommends are not installed here) for the test build, which fuzzes.
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libuv1-dev libxml2-dev libminiupnpc-dev libnatpmp-dev
  uthash-dev  # the hash tables (header-only)
  # several managers sharing one overlay (issue 14): the store's client library, and Redis
  # with Sentinel for its tests (redis-tools comes with them). Debian's redis-server starts a
  # system Redis on 6379 where systemd runs; natmesh's tests never use it.
  libhiredis-dev redis-server redis-sentinel
  python3 graphviz iproute2 nftables iputils-ping netcat-openbsd
  miniupnpd-nftables miniupnpc natpmpc
  libssl-dev
  # hash tables for the manager's indexes (issue 13): header-only
  uthash-dev
  openssl
  tcpdump
  # operators (issue 11): sd_notify (libsystemd), the metrics and status page HTTP listener
  # (libmicrohttpd, as coturn uses), JSON for natmesh-ctl (jansson), man pages (scdoc; man-db
  # and groff-base render them in the tests), the .deb (dpkg-dev: dpkg-deb, dpkg-shlibdeps),
  # systemd-analyze for the unit tests, headless Chromium to test the status page,
  # debootstrap for the package's install test
  libsystemd-dev libmicrohttpd-dev libjansson-dev uthash-dev scdoc man-db groff-base dpkg-dev systemd chromium
  debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
