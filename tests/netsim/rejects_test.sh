#!/usr/bin/env bash
# Every file in bad/ must be refused by `natmesh-netsim check` with exit 2 and the message its
# first comment names ("<!-- expect: TEXT -->").
# usage: rejects_test.sh NETSIM FIXTURE_DIR
set -u
NETSIM=$1 FIX=$2
. "$FIX/lib.sh"
n=0
for f in "$FIX"/bad/*.xml; do
  want=$(sed -n 's/.*<!-- expect: \(.*\) -->.*/\1/p' "$f" | head -n1)
  [ -n "$want" ] || fail "$f has no expect comment"
  msg=$("$NETSIM" check "$f" 2>&1)
  rc=$?
  [ $rc = 2 ] || fail "$(basename "$f"): exit $rc, expected 2 ($msg)"
  case $msg in *"$want"*) ;; *) fail "$(basename "$f"): message \"$msg\" lacks \"$want\"";; esac
  note "$(basename "$f"): refused: $msg"
  n=$((n + 1))
done
[ $n -ge 5 ] || fail "only $n bad files"
echo "PASS ($n files refused)"
