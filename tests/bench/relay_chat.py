#!/usr/bin/env python3
"""Benchmark: chat lines per second end to end through a relay, against the same lines to a
directly connected servant in the same run (issue 9: "the cost of encryption, measured";
docs/performance.md, "Relayed chat").

Setup on loopback (manager --heartbeat 1 --timeout 3, harness.py):
  - a dedicated natmesh-relay, granted the role (--relay-key with its key once the programs
    hold keys; the programs before issue 9 take any relay that says role="relay"), or with
    --relay servant a fourth servant `relay`, started first so it is the oldest candidate;
  - alice (the sender), bob (the direct receiver), carol (made relayed: four fake
    complainers from tests/relay/complainers.py get her judged unreachable; the manager
    assigns the relay and carol pulls from it, and alice stops publishing to her).
A warm-up line from alice reaches bob and carol first (every connection is up). Then alice
is given N lines (--lines, default 2000) on her stdin at once, as fast as the pipe takes
them, and the benchmark takes the time from the first write until bob has shown all N
(direct: alice -> bob) and until carol has (relayed: alice -> relay -> carol), both in the
same run, so the ratio relayed/direct does not depend on how loaded the box is. Each run
(--runs, default 1) sends a fresh batch on the same overlay.

It prints "measure relayed-chat: ..." lines (scripts/test.sh shows those after ctest). As a
ctest (bench_relay_chat) it asserts only what cannot flake: every line of every batch was
shown exactly once by bob and by carol, and never by alice; the rates are positive.

Run it against any build's programs, e.g. a Release build and the programs before TLS:
  python3 tests/bench/relay_chat.py --bindir /tmp/rel/bin --runs 3
  python3 tests/bench/relay_chat.py --bindir /tmp/before/build/bin --runs 3
"""
import asyncio
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import harness  # noqa: E402
from harness import CHAT_RX, random_id  # noqa: E402
from complainers import get_relayed  # noqa: E402


def add_args(ap):
    ap.add_argument("--lines", type=int, default=2000, help="lines per batch (default %(default)s)")
    ap.add_argument("--runs", type=int, default=1, help="batches, one after the other (default %(default)s)")
    ap.add_argument("--relay", choices=("dedicated", "servant"), default="dedicated",
                    help="a natmesh-relay, or a servant relaying (default %(default)s)")

    def check(args):
        if args.lines < 1 or args.runs < 1:
            ap.error("--lines and --runs must be at least 1")
    return check


async def wait_all_lines(h, p, sender, tag, n, since, timeout):
    """Waits until p has shown every one of the n lines `tag NNNNN` from sender (scanning
    its stdout from index since); returns the arrival time of the line that completed the
    set. Fails on timeout, saying how many arrived."""
    rx = re.compile(r"^%s: %s (\d+)\b" % (re.escape(sender), re.escape(tag)))
    seen = set()
    idx = since
    deadline = time.monotonic() + timeout
    while True:
        ev = p._event
        lines = p.streams["stdout"]
        while idx < len(lines):
            m = rx.match(lines[idx].text)
            if m:
                seen.add(int(m.group(1)))
                if len(seen) == n:
                    return lines[idx].t
            idx += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0 or p.eof["stdout"]:
            h.check(False, "%s showed %d of the %d lines of %s within %.0fs" %
                    (p.name, len(seen), n, tag, timeout))
        await harness._event_or_timeout(ev, remaining)


def count_lines(p, sender, tag, since):
    """{index: times shown} of the lines `tag NNNNN` from sender that p showed."""
    counts = {}
    for l in p.streams["stdout"][since:]:
        m = CHAT_RX.match(l.text)
        if m and m.group(1) == sender and m.group(2).startswith(tag + " "):
            i = int(m.group(2).split()[1])
            counts[i] = counts.get(i, 0) + 1
    return counts


async def test(h, args):
    if args.relay == "dedicated" and not os.path.exists(os.path.join(h.bindir, "natmesh-relay")):
        h.note("no natmesh-relay in %s (NATMESH_WITH_RELAY=OFF): a servant relays" % h.bindir)
        args.relay = "servant"
    relay_key = None
    if args.relay == "dedicated" and h.secure:
        _, relay_key = h.state_dir("relay")
    m = await h.start_manager(relay_keys=[relay_key.fp] if relay_key else ())
    relay_prog = "natmesh-relay" if args.relay == "dedicated" else "natmesh-servant"
    relay = await h.start_servant("relay", m, prog=relay_prog)
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    carol = await h.start_servant("carol", m)
    # alice (the one sender) has heard of both receivers and reaches them before anything is
    # sent: "registered" only means the manager listed a servant, and a line published
    # before alice heard of carol's join is, by design, not carol's to get.
    for peer in ("bob", "carol"):
        await h.expect(alice.wait_log(r"connected to %s at" % peer, harness.STARTUP),
                       "alice reaches %s" % peer)
    _, warm = await h.chat_round([alice], [alice, bob, carol], "warm-up", timeout=harness.STARTUP)

    # carol relayed: four complainers (carol's others are alice, bob, the relay and the
    # four of them: seven, quorum four).
    liars, r = await get_relayed(h, m, carol, liars=4)
    h.check_eq(r.get("name"), "relay", "carol's relay is the %s relay" % args.relay)
    _, warm2 = await h.chat_round([alice], [alice, bob, carol], "relayed-warm-up", timeout=harness.STARTUP)
    h.check_exactly_once([alice, bob, carol], warm2, "warm-up through the relay")

    n = args.lines
    rates = []
    for run in range(1, args.runs + 1):
        tag = "b%d-%s" % (run, random_id()[:6])
        since = {p: p.mark() for p in (alice, bob, carol)}
        text = "".join("%s %05d hello from alice\n" % (tag, i) for i in range(n)).encode()
        t0 = time.monotonic()
        alice.proc.stdin.write(text)
        drain = asyncio.ensure_future(alice.proc.stdin.drain())
        budget = max(60.0, n / 50.0)
        t_bob, t_carol = await asyncio.gather(
            wait_all_lines(h, bob, "alice", tag, n, since[bob], budget),
            wait_all_lines(h, carol, "alice", tag, n, since[carol], budget))
        await drain
        for p in (bob, carol):
            counts = count_lines(p, "alice", tag, since[p])
            dup = sorted(i for i, c in counts.items() if c != 1)
            h.check(len(counts) == n and not dup,
                    "run %d: %s showed each of the %d lines exactly once (%d distinct, %d shown more than once)"
                    % (run, p.name, n, len(counts), len(dup)))
        h.check(not count_lines(alice, "alice", tag, since[alice]), "run %d: alice showed none of her own lines" % run)
        direct, relayed = n / (t_bob - t0), n / (t_carol - t0)
        h.check(direct > 0 and relayed > 0, "run %d: both rates are positive" % run)
        rates.append((direct, relayed))
        h.note("run %d: %d lines: bob (direct) %.3fs, carol (relayed) %.3fs" % (run, n, t_bob - t0, t_carol - t0))

    proto = "TLS" if h.secure else "plaintext (before TLS)"
    for run, (direct, relayed) in enumerate(rates, 1):
        print("measure relayed-chat: %s, %s relay, run %d: %.0f lines/s through the relay = %.2f x direct "
              "(%.0f lines/s), N=%d" % (proto, args.relay, run, relayed, relayed / direct, direct, n), flush=True)
    for l in liars:
        l.stop()


if __name__ == "__main__":
    harness.main(test, "relay_chat", budget=120.0, add_args=add_args)
