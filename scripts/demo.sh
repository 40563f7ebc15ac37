#!/usr/bin/env bash
# One command for a new user: install what is missing, build, and run the demo.
#
# The demo builds a small internet in network namespaces (natmesh-netsim, scenario
# netsim/scenarios/demo/overlay.xml): a manager, a servant on the open internet, one behind
# a UPnP router, one behind a NAT-PMP-only router, two behind firewalls with no mapping, and
# a dedicated relay. It narrates the port mappings the routers grant, the complaints and
# verdicts, the relay assignments, then a chat in which every line reaches everyone exactly
# once, the final `natmesh-ctl status`, and draws the overlay (build/demo/overlay.png).
# Network namespaces need root; without root, or where namespaces are not available (a
# container without CAP_SYS_ADMIN), it says so and runs the loopback demo (scripts/demo.py:
# a manager and three servants on 127.0.0.1) instead.
#
#   scripts/demo.sh                  setup, build, demo
#   scripts/demo.sh --no-build [--bindir DIR] [--out DIR]
#                                    the demo only, with programs already built (the ctest
#                                    `demo` runs it so); --out: where overlay.png and the run
#                                    folders go (default build/demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=1
bindir=$root/build/bin
out=$root/build/demo
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --bindir) bindir=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$build" = 1 ]; then
  "$root/scripts/setup.sh"
  BUILD_DIR=$root/build "$root/scripts/build.sh" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi

loopback() {
  echo "demo: $1" >&2
  echo "demo: running the loopback demo instead (a manager and three servants on 127.0.0.1;" >&2
  echo "      it shows the chat, not NAT traversal)." >&2
  echo >&2
  exec python3 "$root/scripts/demo.py" --bindir "$bindir"
}

# The NAT demo needs root (netsim creates network namespaces, veth links and nftables rules,
# all inside namespaces of its own) and a kernel that lets us create namespaces here.
if [ "$(id -u)" -ne 0 ]; then
  loopback "the NAT demo builds a small internet in network namespaces, which needs root: run it as root (sudo ./scripts/demo.sh) to see mappings, verdicts and relays."
fi
if [ ! -x "$bindir/natmesh-netsim" ]; then
  loopback "natmesh-netsim is not built in $bindir (a build without NATMESH_WITH_NETSIM): no NAT demo."
fi
if ! unshare --net true 2>/dev/null || ! ip netns list >/dev/null 2>&1; then
  loopback "network namespaces are not available here (a container without CAP_SYS_ADMIN?): no NAT demo."
fi

mkdir -p "$out/runs"
rm -f "$out/overlay.png"
echo "demo: building a small internet in network namespaces (as root; everything it creates is removed at the end)"
set +e
# The narration and natmesh-ctl's output are netsim's stdout; its progress log (stderr) is
# kept in the run folder's neighbour, and its report lists the failed checks only.
"$bindir/natmesh-netsim" --dir "$out/runs" --bindir "$bindir" run "$root/netsim/scenarios/demo/overlay.xml" \
  2>"$out/netsim.log" | grep --line-buffered -v '^PASS '
rc=${PIPESTATUS[0]}
set -e
run=$(ls -td "$out"/runs/*/ 2>/dev/null | head -n1)
if [ -n "$run" ] && [ -f "$run/overlay.png" ]; then
  cp "$run/overlay.png" "$out/overlay.png"
  echo
  echo "demo: the picture of the overlay is $out/overlay.png (who reaches whom: the manager's"
  echo "      servants, mapped ones labelled with their method, relayed ones hanging off relay1)"
fi
if [ "$rc" -ne 0 ]; then
  echo "demo: natmesh-netsim exited $rc; its log is $out/netsim.log, the programs' logs are in ${run:-$out/runs}logs/" >&2
  tail -n 20 "$out/netsim.log" >&2
fi
exit "$rc"
