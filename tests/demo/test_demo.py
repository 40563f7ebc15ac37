#!/usr/bin/env python3
"""scripts/demo.sh --no-build, checked from its output (issue 11, "what it must show" 5):

  the narration   bob's port mapped by UPnP and carol's by NAT-PMP; dave and erin judged
                  suspicious and relayed by relay1, and pulling from it
  the chat        each of the five lines shown exactly once by each of the four others,
                  never by its author
  natmesh-ctl     the status table: alice direct, bob mapped upnp, carol mapped natpmp,
                  dave and erin relayed by relay1; peers dave names relay1 and complainers
  the picture     OUT/overlay.png is a PNG
  and it takes under a minute.

Exit 77 (skipped) where the demo falls back to loopback (no root, no namespaces)."""
import argparse
import os
import re
import subprocess
import sys
import time

SERVANTS = ["alice", "bob", "carol", "dave", "erin"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("skipped: the NAT demo needs root")
        return 77
    t0 = time.monotonic()
    p = subprocess.run(["bash", a.demo, "--no-build", "--bindir", a.bindir, "--out", a.out],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=140)
    took = time.monotonic() - t0
    out, err = p.stdout, p.stderr
    print(out)
    if "running the loopback demo instead" in err:
        print("skipped: " + err.strip().splitlines()[0])
        return 77
    failures = []

    def check(ok, what):
        print("%s - %s" % ("ok" if ok else "not ok", what))
        if not ok:
            failures.append(what)

    check(p.returncode == 0, "demo.sh exits 0 (%d; %s)" % (p.returncode, err.strip()[-400:]))
    check(took < 60, "the demo takes under a minute (%.1fs)" % took)
    has = lambda rx: re.search(rx, out, re.M) is not None  # noqa: E731
    check(has(r"^\s+\S+\s+bob\s+port mapping made: upnp "), "narration: bob's router mapped his port by UPnP")
    check(has(r"^\s+\S+\s+carol\s+port mapping made: natpmp "), "narration: carol's router mapped hers by NAT-PMP")
    for n in ("dave", "erin"):
        check(has(r"manager\s+complaint: \w+ cannot reach %s \(3 of 3" % n), "narration: complaints about %s" % n)
        check(has(r"manager\s+verdict: %s \([0-9a-f]{16}\) is suspicious" % n), "narration: the verdict on %s" % n)
        check(has(r"manager\s+relay: %s pulls from relay relay1 \(" % n), "narration: %s assigned relay1" % n)
        check(has(r"^\s+\S+\s+%s\s+pulling from relay relay1 at " % n), "narration: %s pulls from relay1" % n)
    # The chat: "[receiver]  author: text" exactly once for every receiver but the author.
    said = {}
    for m in re.finditer(r"^\s+\S+\s+\[(\w+)\]\s+(\w+): (.*)$", out, re.M):
        said.setdefault((m.group(1), m.group(2)), []).append(m.group(3))
    for author in SERVANTS:
        for receiver in SERVANTS:
            n = len(said.get((receiver, author), []))
            want = 0 if receiver == author else 1
            check(n == want, "chat: %s shows %s's line %d time(s) (want %d)" % (receiver, author, n, want))
    # The status table (rows of natmesh-ctl status, indented by the narration).
    rows = {l.split()[0]: l.split() for l in out.splitlines()
            if re.match(r"^  (alice|bob|carol|dave|erin|relay1)\s+[0-9a-f]{16}\s", l)}
    want = {"alice": ("direct", "none", "-"), "bob": ("mapped", "upnp", "-"), "carol": ("mapped", "natpmp", "-"),
            "dave": ("relayed", "none", "relay1"), "erin": ("relayed", "none", "relay1")}
    for n, w in want.items():
        r = rows.get(n, [])
        check(tuple(r[4:7]) == w, "status table: %s is %s (%s)" % (n, " ".join(w), " ".join(r)))
    check(has(r"^  dave \([0-9a-f]{16}\): servant, relayed, .*; pulls from relay relay1 \(suspicious by quorum\)$"),
          "peers dave: relayed by relay1, and why")
    check(len(re.findall(r"^    from (alice|bob|carol|erin)\s+\d+ live complaints?, the last", out, re.M)) >= 3,
          "peers dave: names at least three complainers")
    png = os.path.join(a.out, "overlay.png")
    ok = os.path.exists(png) and open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    check(ok, "the picture is written (%s)" % png)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
