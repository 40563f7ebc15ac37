#!/usr/bin/env bash
# The safety guard: a namespace name that leads to the host's own namespace (here a bind
# mount of it under /run/netns carrying a netsim-looking name) is refused by exec and down,
# and nothing in the host's namespace is touched or killed.
# usage: guard_test.sh NETSIM FIXTURE_DIR RUNS_DIR
set -u
NETSIM=$1 FIX=$2 BASE=$3/guard-test
. "$FIX/lib.sh"
[ "$(id -u)" = 0 ] || fail "must run as root"
id=$(printf '%06x' $(( (RANDOM << 8 | RANDOM) & 0xffffff )))
name="nms-$id-evil"
mkdir -p "$BASE/$id"
printf 'netsim-state 1\nprefix nms-%s-\nowner 1\nns evil %s\n' "$id" "$name" > "$BASE/$id/state"
sleep 60 & sentinel=$!
cleanup() {
  kill "$sentinel" 2>/dev/null
  umount "/run/netns/$name" 2>/dev/null
  rm -f "/run/netns/$name"
}
trap cleanup EXIT
mkdir -p /run/netns
touch "/run/netns/$name"
mount --bind /proc/self/ns/net "/run/netns/$name" || fail "cannot bind-mount the host namespace"

msg=$("$NETSIM" --dir "$BASE" --run "$id" exec evil -- true 2>&1) && fail "exec entered the host's namespace"
note "exec refused: $msg"
msg=$("$NETSIM" --dir "$BASE" --run "$id" down 2>&1) && fail "down accepted the host's namespace"
note "down refused: $msg"
kill -0 "$sentinel" 2>/dev/null || fail "down killed a process of the host's namespace"
mountpoint -q "/run/netns/$name" || fail "down removed the host namespace's mount"
echo "PASS"
