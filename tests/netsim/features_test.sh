#!/usr/bin/env bash
# Engine features: features.xml must pass and report its measures with plausible figures
# (the ticker prints "ping" 1.5 s after it starts and "pong" 1 s later); exactly-fails.xml
# must fail both of its exactly="yes" assertions; reset-fails.xml must fail its
# reset-connection step (no such connection) and not run what follows; capture.xml must pass
# and capture-fails.xml fail each of its expect-capture checks, and neither may leave its
# packet capture behind.
# usage: features_test.sh NETSIM FIXTURE_DIR RUNS_DIR
set -u
NETSIM=$1 FIX=$2 RUNS=$3
. "$FIX/lib.sh"
mkdir -p "$RUNS" # its logs go there, also in a fresh build where no run made it yet
out=$("$NETSIM" --dir "$RUNS" --bindir "$FIX" run "$FIX/features.xml" 2>"$RUNS/features.err")
rc=$?
echo "$out"
[ $rc = 0 ] || fail "features.xml: exit $rc"
in_range() { # FIGURE LOW HIGH (seconds, two decimals)
  awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'
}
ping=$(echo "$out" | sed -n 's/^measure ping-after-start: \([0-9.]*\) s = \([0-9.]*\) x 500ms$/\1 \2/p')
[ -n "$ping" ] || fail "no stdout line 'measure ping-after-start: S s = N x 500ms'"
set -- $ping
in_range "$1" 1.40 1.80 || fail "ping-after-start measured $1 s, expected about 1.5"
in_range "$2" 2.80 3.60 || fail "ping-after-start is $2 units, expected about 3"
pong=$(echo "$out" | sed -n 's/^measure pong-after-ping: \([0-9.]*\) s$/\1/p')
[ -n "$pong" ] || fail "no stdout line 'measure pong-after-ping: S s'"
in_range "$pong" 0.90 1.30 || fail "pong-after-ping measured $pong s, expected about 1.0"
note "measured ping-after-start $1 s, pong-after-ping $pong s"

out=$("$NETSIM" --dir "$RUNS" run "$FIX/exactly-fails.xml" 2>"$RUNS/exactly-fails.err")
rc=$?
echo "$out"
[ $rc = 1 ] || fail "exactly-fails.xml: exit $rc, expected 1"
for a in dup-at-once dup-while-settling; do
  echo "$out" | grep -E "^FAIL +$a .*2 times, expected exactly 1" >/dev/null ||
    fail "$a did not fail with 'printed ... 2 times, expected exactly 1'"
done

out=$("$NETSIM" --dir "$RUNS" run "$FIX/reset-fails.xml" 2>"$RUNS/reset-fails.err")
rc=$?
echo "$out"
[ $rc = 1 ] || fail "reset-fails.xml: exit $rc, expected 1"
echo "$out" | grep -E "^FAIL +reset-nothing .*idle has no TCP connection to" >/dev/null ||
  fail "reset-nothing did not fail with 'idle has no TCP connection to ...'"
echo "$out" | grep -E "^NOT RUN +not-reached|not-reached .*not reached" >/dev/null ||
  fail "the assertion after the failed reset ran"
no_pcap_left() { # REPORT_OUTPUT NAME
  local dir
  dir=$(echo "$1" | sed -n 's/.*logs in \(.*\) ==$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || fail "$2: no run folder in its report"
  ls "$dir"/*.pcap >/dev/null 2>&1 && fail "$2: left $(ls "$dir"/*.pcap) behind"
  grep -q '^file wire.pcap$' "$dir/state" || fail "$2: the capture is not in the state file"
}

out=$("$NETSIM" --dir "$RUNS" run "$FIX/capture.xml" 2>"$RUNS/capture.err")
rc=$?
echo "$out"
[ $rc = 0 ] || fail "capture.xml: exit $rc"
no_pcap_left "$out" capture.xml

out=$("$NETSIM" --dir "$RUNS" run "$FIX/capture-fails.xml" 2>"$RUNS/capture-fails.err")
rc=$?
echo "$out"
[ $rc = 1 ] || fail "capture-fails.xml: exit $rc, expected 1"
want_fail() { # NAME MESSAGE-REGEX
  echo "$out" | grep -E "^FAIL +$1 .*$2" >/dev/null || fail "$1 did not fail with '$2'"
}
want_fail cleartext-found '"cleartext-echo-name" IS in the capture'
want_fail plaintext-connection 'not TLS 1.3 only: .*:7000: not TLS records'
want_fail encrypted-not-found '"secret-line-0451" is in no frame and no TCP stream'
want_fail too-few-tls 'only 2 TLS 1.3 connection\(s\), expected 3'
want_fail no-tls-between 'no TLS 1.3 connection between .* and 11.0.0.99'
want_fail size-limit 'reached its size limit \(65536 bytes\)'
want_fail empty-proves-nothing 'holds no TCP payload'
no_pcap_left "$out" capture-fails.xml
echo PASS
