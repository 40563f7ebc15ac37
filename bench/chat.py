#!/usr/bin/env python3
"""Chat benchmark of scripts/bench.sh (issue 13): the time for a line to reach every servant,
with N (default 200) real natmesh-servant processes on loopback, full mesh against the
bounded-degree mesh, p50/p99.

For each overlay kind it starts a real natmesh-manager and N servants (tests/integration/
harness.py starts them as the integration tests do), waits until every servant has connected
to its peers (the full mesh: N-1 "connected to" lines each; the bounded mesh: its
neighbours), sends warm-up lines until one reached everyone, then --lines lines, one at a time, each from the next
servant in turn, and takes for each line the time from its write to the sender's stdin until
the last of the N-1 others showed it (time to all) and until the first did (time to first).

The full mesh always runs. The bounded mesh runs when the manager's --help lists
--mesh-above (then --mesh-above 16 --mesh-degree 8, so N servants are above it); otherwise
the row chat_mesh_available says 0.

Rows appended to --csv (figure,n,value,unit,baseline,ratio):
  chat_full_p50, chat_full_p99    time to all, full mesh; baseline: time to first, same lines
  chat_mesh_p50, chat_mesh_p99    time to all, bounded mesh; baseline: the full mesh's
  chat_mesh_available             1 or 0 (baseline 1)
  chat_connect_seconds            time until the full mesh was up; baseline: bounded mesh's
                                  (or the full mesh's own when there is none)
  chat_full_missed, chat_mesh_missed  (line, servant) deliveries not shown within
                                  --line-timeout; baseline: all deliveries (lines x (N-1))
Everything is bounded: a mesh that is not up within --connect-timeout is measured as it is
(a line that misses a servant within --line-timeout is counted, a line shown twice fails).

  python3 bench/chat.py --bindir build-bench/bin [--n 200] [--lines 30] [--csv FILE]
"""
import asyncio
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402

ARGS = None


def add_args(ap):
    ap.add_argument("--n", type=int, default=200, help="servant processes (default %(default)s)")
    ap.add_argument("--lines", type=int, default=40, help="lines measured per overlay (default %(default)s)")
    ap.add_argument("--csv", default=None, help="append the rows to this file")
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--line-timeout", type=float, default=30.0)

    def check(args):
        global ARGS
        if args.n < 2 or args.lines < 1:
            ap.error("--n must be at least 2, --lines at least 1")
        ARGS = args
    return check


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))]


async def wait_logged(servants, pattern, want, timeout):
    """Until every servant logged want(s) lines matching pattern, or timeout: returns whether
    all did. Waits on each servant's next output line in turn (all must finish anyway)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    for s in servants:
        idx = count = 0
        while True:
            ev = s._event
            lines = s.streams["stderr"]
            while idx < len(lines):
                count += 1 if rx.search(lines[idx].text) else 0
                idx += 1
            if count >= want(s):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0 or s.eof["stderr"]:
                return False
            await harness._event_or_timeout(ev, remaining)
    return True


async def one_line(sender, servants, text, timeout):
    """sender types text; returns (arrival delays at each other servant that showed it
    within timeout, how many did not, how many showed it more than once)."""
    since = {r: r.mark() for r in servants if r is not sender}
    pat = r"^%s: %s$" % (re.escape(sender.name), re.escape(text))
    t0 = time.monotonic()
    await sender.send(text)
    got = await asyncio.gather(*(r.wait_for_line(pat, timeout, since=i) for r, i in since.items()),
                               return_exceptions=True)
    delays = [g.line.t - t0 for g in got if not isinstance(g, BaseException)]
    rx = re.compile(pat)
    dup = sum(1 for r, i in since.items()
              if sum(1 for l in r.streams["stdout"][i:] if rx.search(l.text)) > 1)
    return delays, len(got) - len(delays), dup


async def overlay(h, n, lines, mesh):
    port_range = h.free_port_range(n + 40)
    extra = ("--mesh-above", "16", "--mesh-degree", "8") if mesh else ()
    m = await h.start_manager(port_range=port_range, heartbeat=5, timeout=30, extra=extra,
                              name="manager-mesh" if mesh else "manager-full")
    t0 = time.monotonic()
    tag = "m" if mesh else "f"
    servants = [await h.start_servant("%s%03d" % (tag, i), m, wait_registered=False)
                for i in range(n)]  # started at once: each registers while the next starts
    for s in servants:
        await h.expect(s.wait_log(r"registered as %s\b" % re.escape(s.name), 60.0),
                       "%s registered" % s.name)
    if mesh:
        # A servant of the bounded mesh connects to some of its neighbours only (the smaller
        # id dials): it is up once it was told its neighbours and a warm-up line reaches
        # everyone.
        ok = await wait_logged(servants, r"mesh: \d+ neighbours", lambda s: 1, ARGS.connect_timeout)
    else:
        ok = await wait_logged(servants, r"connected to \S+ at", lambda s: n - 1, ARGS.connect_timeout)
    # Warm-up lines, one at a time, until one reached everyone (at most 5).
    for k in range(5):
        _, miss, _ = await one_line(servants[k], servants, "warm-up-%s-%d" % (tag, k), ARGS.line_timeout)
        h.note("warm-up line %d: %d of %d servants showed it" % (k, n - 1 - miss, n - 1))
        if not miss:
            break
    secs = time.monotonic() - t0
    h.note("%s: %d servants up in %.1fs (%s)" % ("bounded mesh" if mesh else "full mesh", n, secs,
                                                  "all connected" if ok else "not all connected"))
    # A line that misses some servant within --line-timeout is counted (chat_*_missed), not
    # waited for; a line shown twice anywhere fails the run (display is exactly once).
    to_all, to_first, missed = [], [], 0
    for k in range(lines):
        sender = servants[(k * 7) % n]
        delays, miss, dup = await one_line(sender, servants, "%s-line-%d %s" % (tag, k, harness.random_id()),
                                           ARGS.line_timeout)
        h.check(dup == 0, "%s line %d: shown once by each servant (%d showed it twice)" % (tag, k, dup))
        missed += miss
        if miss:
            h.note("%s line %d: %d of %d servants did not show it within %.0fs" %
                   (tag, k, miss, n - 1, ARGS.line_timeout))
        elif delays:
            to_all.append(max(delays))
            to_first.append(min(delays))
    h.check(to_all, "%s: some line reached every servant" % tag)
    for s in servants:
        await s.stop(grace=2.0)
    await m.stop()
    return secs, to_all, to_first, missed


def row(f, n, v, unit, b):
    ratio = v / b if b else 0.0
    print("  %-24s N=%-4d %10.4f %-4s baseline %10.4f ratio %6.3f" % (f, n, v, unit, b, ratio), flush=True)
    if ARGS.csv:
        with open(ARGS.csv, "a") as fh:
            fh.write("%s,%d,%.6g,%s,%.6g,%.4f\n" % (f, n, v, unit, b, ratio))


async def test(h, args):
    n = args.n
    rc = subprocess.run([h.binary("natmesh-manager"), "--help"], capture_output=True, text=True)
    has_mesh = "--mesh-above" in rc.stdout + rc.stderr
    full_secs, full_all, full_first, full_missed = await overlay(h, n, args.lines, False)
    mesh_secs = None
    if has_mesh:
        mesh_secs, mesh_all, _, mesh_missed = await overlay(h, n, args.lines, True)
    print("chat: %d servants, %d lines each overlay" % (n, args.lines))
    row("chat_full_p50", n, pct(full_all, 0.5), "s", pct(full_first, 0.5))
    row("chat_full_p99", n, pct(full_all, 0.99), "s", pct(full_first, 0.99))
    row("chat_mesh_available", n, 1.0 if has_mesh else 0.0, "bool", 1.0)
    row("chat_connect_seconds", n, full_secs, "s", mesh_secs if mesh_secs else full_secs)
    # Deliveries missed: (line, receiver) pairs not shown within --line-timeout.
    row("chat_full_missed", n, full_missed, "deliveries", args.lines * (n - 1))
    if has_mesh:
        row("chat_mesh_p50", n, pct(mesh_all, 0.5), "s", pct(full_all, 0.5))
        row("chat_mesh_p99", n, pct(mesh_all, 0.99), "s", pct(full_all, 0.99))
        row("chat_mesh_missed", n, mesh_missed, "deliveries", args.lines * (n - 1))


if __name__ == "__main__":
    harness.main(test, "bench_chat", budget=280.0, add_args=add_args)
