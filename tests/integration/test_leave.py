#!/usr/bin/env python3
"""Leaving the overlay, three ways, with heartbeat 1 s and timeout 3 s:

  who     does                              every other servant must
  erin    types /quit                       log "peer left: erin" within one heartbeat
                                            (1 s) and drop it from /peers
  dave    is killed with SIGKILL            drop it within the heartbeat timeout (3 s)
  carol   is frozen with SIGSTOP (its TCP   drop it once the manager's timeout expires
          sessions stay open, it just       (3 s, plus the manager's sweep); after SIGCONT
          stops heartbeating)               carol re-registers and is listed again
  alice, bob chat throughout                see each other's lines exactly once
"""
import re
import signal
import time

import harness
from harness import HEARTBEAT, TIMEOUT, main

NAMES = ["alice", "bob", "carol", "dave", "erin"]


async def wait_gone(h, leaver, others, since, started, limit, how):
    """Every other servant logs that leaver left; returns the slowest time after started."""
    hits = await h.wait_all(
        [o.wait_log(r"peer (left: %s \(|%s dropped)" % (leaver.name, leaver.name), limit + 5, since[o])
         for o in others],
        "every other servant dropped %s (%s)" % (leaver.name, how))
    slowest = max(hit.line.t for hit in hits) - started
    h.note("%s gone everywhere %.3fs after %s" % (leaver.name, slowest, how))
    return slowest


async def check_lists(h, others, gone, n):
    for o in others:
        rows = await o.peers()
        names = {r[1] for r in rows}
        h.check(gone not in names and len(rows) == n,
                "%s's /peers no longer lists %s (%d peers)" % (o.name, gone, len(rows)))


async def test(h):
    m = await h.start_manager()
    servants = {n: await h.start_servant(n, m) for n in NAMES}
    await h.wait_peer_count(servants.values(), 5)
    alice, bob, carol, dave, erin = (servants[n] for n in NAMES)

    # 1. /quit: the manager publishes the leave at once, well within one heartbeat.
    others = [alice, bob, carol, dave]
    since = {o: o.mark("stderr") for o in others}
    started = time.monotonic()
    await erin.send("/quit")
    slowest = await wait_gone(h, erin, others, since, started, HEARTBEAT, "/quit")
    h.check(slowest < HEARTBEAT, "after /quit erin vanished within one heartbeat (%.3fs < %ds)" %
            (slowest, HEARTBEAT))
    await h.expect(m.wait_log(r"left: erin\b"), "manager logged left: erin")
    code = await erin.wait_exit()
    h.check_eq(code, 0, "erin exited cleanly after /quit")
    await check_lists(h, others, "erin", 4)
    _, lines = await h.chat_round([alice, bob], others, "after quit")

    # 2. SIGKILL: no bye, but the kernel closes its sockets.
    others = [alice, bob, carol]
    since = {o: o.mark("stderr") for o in others}
    started = time.monotonic()
    dave.info["killed"] = True
    dave.signal(signal.SIGKILL)
    slowest = await wait_gone(h, dave, others, since, started, TIMEOUT, "SIGKILL")
    h.check(slowest <= TIMEOUT, "after SIGKILL dave vanished within the timeout (%.3fs <= %ds)" %
            (slowest, TIMEOUT))
    await check_lists(h, others, "dave", 3)

    # 3. SIGSTOP: sockets stay open; only the missing heartbeats tell.
    others = [alice, bob]
    since = {o: o.mark("stderr") for o in others}
    carol_since = carol.mark("stderr")
    started = time.monotonic()
    carol.signal(signal.SIGSTOP)
    # Chat goes on while carol is frozen.
    await h.chat_round([alice, bob], others, "while carol is frozen")
    slowest = await wait_gone(h, carol, others, since, started, TIMEOUT + 2, "SIGSTOP")
    h.check(TIMEOUT - 0.5 <= slowest <= TIMEOUT + 1.5,
            "frozen carol was dropped by the heartbeat timeout (%.3fs, timeout %ds)" % (slowest, TIMEOUT))
    await h.expect(m.wait_log(r"left: carol\b.*(heartbeat|timeout)"), "manager says carol timed out")
    await check_lists(h, others, "carol", 2)

    # carol wakes up: its manager session was closed, it reconnects and registers again.
    since = {o: o.mark("stderr") for o in others}
    carol.signal(signal.SIGCONT)
    await h.expect(carol.wait_log(r"registered as carol\b", 15, carol_since),
                   "carol re-registered after SIGCONT")
    await h.wait_all([o.wait_log(r"peer joined: carol\b", 10, since[o]) for o in others],
                     "alice and bob list carol again")
    _, lines = await h.chat_round([alice, bob, carol], [alice, bob, carol], "after carol's return")
    h.check_exactly_once([alice, bob, carol], lines, "after carol's return")


if __name__ == "__main__":
    main(test, "leave", budget=90)
