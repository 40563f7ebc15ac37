#!/usr/bin/env bash
# After a failing run, an interrupted run (SIGINT), a crashed run (SIGKILL of netsim) and
# up/exec/down, no namespace and no process of those runs is left, nor the packet capture
# an interrupted run was writing, `down` removes only its own run, and the host's own
# namespace is exactly as before.
# usage: cleanup_test.sh NETSIM FIXTURE_DIR RUNS_DIR
set -u
NETSIM=$1 FIX=$2 BASE=$3/cleanup-test
. "$FIX/lib.sh"
mkdir -p "$BASE"
[ "$(id -u)" = 0 ] || fail "must run as root (network namespaces)"
before=$(root_snapshot)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

note "1. a deliberately failing scenario"
"$NETSIM" --dir "$BASE" run "$FIX/failing.xml" >"$out/fail.out" 2>"$out/fail.err"
rc=$?
[ $rc = 1 ] || fail "failing scenario exited $rc, expected 1"
grep -Eq '^FAIL +wrongly-expects-inbound' "$out/fail.out" || fail "report does not name the failed assertion: $(cat "$out/fail.out")"
grep -Eq '^PASS +holds' "$out/fail.out" || fail "report lacks the passing assertion"
id=$(run_id_in "$out/fail.err")
[ -n "$id" ] || fail "no run id in output"
assert_run_gone "$BASE" "$id"

for sig in INT TERM KILL; do
  note "2. a run stopped by SIG$sig while its processes run"
  "$NETSIM" --dir "$BASE" run "$FIX/long.xml" >"$out/long-$sig.out" 2>"$out/long-$sig.err" &
  pid=$!
  WAIT_S=30 wait_for grep -q 'line [0-9]*: sleep' "$out/long-$sig.err" || { kill -KILL $pid; fail "long scenario never reached its sleep: $(cat "$out/long-$sig.err")"; }
  id=$(run_id_in "$out/long-$sig.err")
  ns_of_run_left "$id" || fail "run \"$id\" has no namespaces while running: $(cat "$out/long-$sig.err")"
  [ -f "$BASE/$id/wire.pcap" ] || fail "run $id is not capturing (no wire.pcap) before SIG$sig"
  kill -"$sig" "$pid"
  wait "$pid"
  rc=$?
  case $sig in
    INT|TERM) [ $rc = 130 ] || fail "interrupted run exited $rc, expected 130"
              grep -q INTERRUPTED "$out/long-$sig.out" || fail "report does not say interrupted";;
    KILL) # netsim is gone; its watchdog must clean up on its own.
          WAIT_S=20 wait_for no_ns_of_run "$id" || fail "watchdog did not remove run $id"
          WAIT_S=10 wait_for grep -qx clean "$BASE/$id/state" || fail "watchdog did not finish";;
  esac
  assert_run_gone "$BASE" "$id"
  [ -e "$BASE/$id/wire.pcap" ] && fail "SIG$sig left the capture $BASE/$id/wire.pcap behind"
done

note "3. up, exec, and down removing only its own run"
"$NETSIM" --dir "$BASE" up "$FIX/long.xml" >"$out/up1.out" 2>"$out/up1.err" || fail "up failed: $(cat "$out/up1.err")"
id1=$(run_id_in "$out/up1.err")
"$NETSIM" --dir "$BASE" up "$FIX/long.xml" >"$out/up2.out" 2>"$out/up2.err" || fail "second up failed"
id2=$(run_id_in "$out/up2.err")
[ "$id1" != "$id2" ] || fail "two runs got the same id"
addr=$("$NETSIM" --dir "$BASE" --run "$id1" exec h1 -- ip -o -4 addr show dev eth0) || fail "exec failed"
echo "$addr" | grep -q '192\.168\.1\.10/24' || fail "exec did not run inside h1: $addr"
"$NETSIM" --dir "$BASE" exec pub -- ping -c1 -W2 11.0.0.3 >/dev/null || fail "pub cannot ping r1 in the up topology"
pgrep -f "$BASE/$id1/miniupnpd-r1.conf" >/dev/null || fail "miniupnpd of run $id1 did not survive netsim exiting (up)"
"$NETSIM" --dir "$BASE" --run "$id1" down >/dev/null || fail "down of run $id1 failed"
assert_run_gone "$BASE" "$id1"
ns_of_run_left "$id2" || fail "down of run $id1 removed run $id2 too"
"$NETSIM" --dir "$BASE" down >/dev/null || fail "down of the current run failed"
assert_run_gone "$BASE" "$id2"
"$NETSIM" --dir "$BASE" down >/dev/null 2>&1 && fail "down with no run up should fail"

note "4. the host's namespace is unchanged"
after=$(root_snapshot)
[ "$before" = "$after" ] || fail "host namespace changed: $(diff <(echo "$before") <(echo "$after"))"
echo "PASS"
