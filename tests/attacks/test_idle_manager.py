#!/usr/bin/env python3
"""Attack (issue 9): 1,536 idle sockets from one address lock every servant and natmesh-ctl
out of the manager.

Before issue 9 the manager held at most 1,536 sessions of any kind: an attacker opening
1,536 connections that never speak (and opening each again when the manager dropped it after
its timeout) left no room for servants or natmesh-ctl. Now connections not yet authenticated
are capped per address (8) and in all (256), ctl sessions have their own cap, and
authenticated sessions are never pushed out by unauthenticated ones.

  who        runs where                   does                                 must see
  manager    127.0.0.1                    -                                    -
  alice, bob 127.0.0.1                    registered before the flood          still listed, never
                                                                               left
  flood      127.0.0.3                    1,536 TCP connections that say       -
                                          nothing; each one the manager
                                          closes is opened again 1 s later
  carol      127.0.0.1                    starts while the flood runs          registers; chat among
                                                                               the three
  operator   natmesh-ctl status           while the flood runs                 answers, lists three

Before issue 9 this fails: carol cannot register and natmesh-ctl gets no answer. Recorded on
main at b96444a (1,536 connections opened in 0.29 s): "not ok 5 - natmesh-ctl status answers
while the flood runs (exit 3 ... manager (127.0.0.1:33285) reports an error: too many
sessions", "not ok 6 - carol registers while the flood runs: carol: no stderr line matching
/registered as carol\b/ within 15.0s".
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import STARTUP, main  # noqa: E402
from attackers import Flood  # noqa: E402

SOCKETS = 1536


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    msince = m.mark("stderr")

    flood = Flood(h, m.info["port"], SOCKETS)
    took, still = await flood.start()
    h.note("flood: %d connections attempted in %.2fs: %s" % (SOCKETS, took, flood.describe()))
    try:
        t0 = time.monotonic()
        carol = await h.start_servant("carol", m, wait_registered=False)
        rc, out, err = await h.ctl(m, "status", "--format", "xml", "--timeout", "5")
        h.check(rc == 0, "natmesh-ctl status answers while the flood runs (exit %d %s)" % (rc, err.strip()[-200:]),
                fatal=False)
        hit = await h.expect(carol.wait_log(r"registered as carol\b", STARTUP),
                             "carol registers while the flood runs")
        h.note("carol registered %.1fs after she started" % (hit.line.t - t0))
        h.check(rc == 0, "natmesh-ctl answered")
        st = await h.status(m)
        h.check_eq(sorted(s.get("name") for s in st.findall("servant")), ["alice", "bob", "carol"],
                   "the status lists alice, bob and carol")
        _, lines = await h.chat_round([alice, bob, carol], [alice, bob, carol], "during the flood")
        h.check_exactly_once([alice, bob, carol], lines, "during the flood")
        h.note("flood at the end: %s" % flood.describe())
    finally:
        await flood.stop()
    left = m.find(r"left: (alice|bob)\b", "stderr", msince)
    h.check(not left, "alice and bob stayed registered throughout%s" % (" (%s)" % left[0].group(0) if left else ""))


if __name__ == "__main__":
    main(test, "attack_idle_manager", budget=120)
