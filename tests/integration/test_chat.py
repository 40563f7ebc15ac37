#!/usr/bin/env python3
"""One manager and five servants on loopback: every line typed into each servant reaches
every other servant exactly once, and /peers shows all five, marking the asker.

  who         runs where         does                               must see
  manager     127.0.0.1:P        --heartbeat 1 --timeout 3          five joins
  s1..s5      127.0.0.1 (ports   register, then each types 3 lines  each other's lines,
              assigned by P)     and a final sentinel line          exactly once each
"""
import harness
from harness import main

NAMES = ["alice", "bob", "carol", "dave", "erin"]


async def test(h):
    m = await h.start_manager()
    servants = [await h.start_servant(n, m) for n in NAMES]
    await h.wait_peer_count(servants, len(NAMES))
    for n in NAMES:
        await h.expect(m.wait_log(r"joined: %s\b" % n), "manager logged joined: %s" % n)

    # /peers: all five, the asker marked with '*', one line each, the count at the end.
    for s in servants:
        rows = await s.peers()
        names = sorted(r[1] for r in rows)
        h.check_eq(names, sorted(NAMES), "%s's /peers lists all five" % s.name)
        me = [r for r in rows if r[0]]
        h.check(len(me) == 1 and me[0][1] == s.name, "%s's /peers marks itself, only itself" % s.name)
        ids = {r[2] for r in rows}
        h.check(len(ids) == len(NAMES), "%s's /peers shows five distinct ids" % s.name)

    # Three rounds in which every servant types at once, then a sentinel from each. The
    # sentinel travels on the same connection after the others: once it has arrived, a
    # duplicate of an earlier line would have arrived too.
    all_lines = {}
    for k in range(3):
        _, lines = await h.chat_round(servants, servants, "round %d" % (k + 1))
        for s, text in lines.items():
            all_lines.setdefault(s, []).append(text)
    latencies, sentinels = await h.chat_round(servants, servants, "sentinel")
    worst = max(latencies.values())
    h.note("worst delivery latency of the sentinel round: %.3fs" % worst)
    for k in range(3):
        h.check_exactly_once(servants, {s: all_lines[s][k] for s in servants}, "round %d" % (k + 1))
    h.check_exactly_once(servants, sentinels, "sentinel")
    # Nothing else was shown: every chat line on every servant is one of those we typed.
    typed = {(s.name, t) for s in servants for t in all_lines[s] + [sentinels[s]]}
    for s in servants:
        stray = [l for l in s.chat_lines() if l not in typed]
        h.check(not stray, "%s shows no line nobody typed %s" % (s.name, stray[:3] if stray else ""))
    # Each servant keeps one outbound connection per peer: four "connected to" lines, not one
    # per message.
    for s in servants:
        conns = s.find(r"connected to (\S+) at", "stderr")
        refused = [r.group(0) for r in s.find(r"peer \S+ \(\S+\) reports an error: .*", "stderr")]
        h.check(sorted(c.group(1) for c in conns) == sorted(n for n in NAMES if n != s.name),
                "%s opened exactly one connection to each peer (%s)%s" %
                (s.name, sorted(c.group(1) for c in conns), "; refused: %s" % refused if refused else ""))


if __name__ == "__main__":
    main(test, "chat", budget=90)
