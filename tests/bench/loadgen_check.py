#!/usr/bin/env python3
"""ctest bench_loadgen: natmesh-loadgen in a tiny configuration (N=50, 1 s windows) against the
real natmesh-manager. Asserts only what cannot flake: the run exited 0 (every session
registered, every heartbeat sent was answered, the baselines held every session), and the
results file is well-formed: the columns figure,n,value,unit,baseline,ratio, numbers where
numbers belong, the figures of a complete run present, none of the *_incomplete ones.
Never a time.

  loadgen_check.py --bindir BUILD/bin --loadgen PATH"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile

WANT = {"register_seconds", "register_cpu_seconds", "rss_per_servant", "heartbeat_rate",
        "heartbeat_rate_vs_tls", "heartbeat_p50", "heartbeat_p99", "join_seconds",
        "join_bytes_per_servant", "leave_seconds", "leave_bytes_per_servant", "ctl_status_ok",
        "ctl_status_seconds"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--n", type=int, default=50)
    a = ap.parse_args()
    fails = []
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "results.csv")
        argv = [a.loadgen, "--manager", os.path.join(a.bindir, "natmesh-manager"), "--n", str(a.n),
                "--seconds", "1", "--register-timeout", "20", "--csv", out]
        ctl = os.path.join(a.bindir, "natmesh-ctl")
        if os.path.exists(ctl):
            argv += ["--ctl", ctl]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=25)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            fails.append("natmesh-loadgen exited %d" % r.returncode)
        rows = list(csv.reader(open(out))) if os.path.exists(out) else []
        seen = set()
        for row in rows:
            if len(row) != 6:
                fails.append("a row without 6 columns: %r" % row)
                continue
            f, n, v, unit, b, ratio = row
            try:
                int(n), float(v), float(b), float(ratio)
            except ValueError:
                fails.append("a row with a non-number: %r" % row)
            if not f or not unit or int(n) != a.n:
                fails.append("a row without a figure, a unit or N=%d: %r" % (a.n, row))
            if f.endswith("_incomplete") or f == "register_refused":
                fails.append("not every change or session completed: %r" % row)
            seen.add(f)
        want = WANT if os.path.exists(ctl) else {f for f in WANT if not f.startswith("ctl_")}
        if want - seen:
            fails.append("figures missing: %s" % ", ".join(sorted(want - seen)))
        for row in rows:
            if row[0] == "heartbeat_rate" and float(row[2]) <= 0:
                fails.append("no heartbeat answered")
            if row[0] == "ctl_status_ok" and float(row[2]) != 1:
                fails.append("natmesh-ctl status failed")
    for f in fails:
        print("FAIL: " + f)
    print("# %s bench_loadgen: %d rows" % ("FAIL" if fails else "PASS", len(rows)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
