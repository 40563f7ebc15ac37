#!/usr/bin/env python3
"""Views through a manager restart (issue 13): seven servants in a bounded mesh of degree 2
from the first (--mesh-above 0), each holding only its view.

  step                         who                         must see
  1. seven servants chat       s1..s7, manager M1          lines everywhere, exactly once,
                                                           most of them verified by their
                                                           membership certificates; each
                                                           lists fewer than the seven
  2. M1 is SIGKILLed; chat     s1..s7                      lines everywhere, exactly once
     goes on over the mesh
  3. M2 (same key and port)    every servant               registers again, gets its view
     starts; chat while they                               and neighbours again; lines
     rejoin and after                                      everywhere, exactly once; each
                                                           says "mesh: view of K of 7
                                                           servants" with K < 7
"""
import re
import signal

import harness
from harness import main

NAMES = ["s%d" % i for i in range(1, 8)]
MESH = ("--mesh-above", "0", "--mesh-degree", "2")


async def views(h, servants, what):
    """Each servant's /peers: fewer entries than the overlay, and the view line."""
    for s in servants:
        for _ in range(20):
            since = s.mark()
            rows = await s.peers()
            view = s.find(r"mesh: view of (\d+) of (\d+) servants", "stdout", since)
            if view and int(view[-1].group(2)) == len(NAMES) and len(rows) < len(NAMES):
                break
            await harness.asyncio.sleep(0.5)
        h.check(view and int(view[-1].group(1)) < len(NAMES) and int(view[-1].group(2)) == len(NAMES),
                "%s: %s holds a view (%s), not the whole overlay" %
                (what, s.name, view[-1].group(0) if view else "%d rows, no view line" % len(rows)))


async def test(h):
    m1 = await h.start_manager(name="manager1", extra=MESH)
    port, prange = m1.info["port"], m1.info["port_range"]
    servants = [await h.start_servant(n, m1) for n in NAMES]
    await h.wait_all([s.wait_log(r"mesh: [12] neighbours", 10) for s in servants],
                     "every servant was told its neighbours")
    _, before = await h.chat_round(servants, servants, "before")
    h.check_exactly_once(servants, before, "before")
    await views(h, servants, "before")

    since_err = {s: s.mark("stderr") for s in servants}
    m1.info["killed"] = True
    m1.signal(signal.SIGKILL)
    await m1.wait_exit()
    await h.wait_all([s.wait_log(r"manager .*unreachable", 10, since_err[s]) for s in servants],
                     "every servant noticed the manager is gone")
    _, outage = await h.chat_round(servants, servants, "outage")
    h.check_exactly_once(servants, outage, "outage")

    since_err = {s: s.mark("stderr") for s in servants}
    m2 = await h.start_manager(port=port, port_range=prange, name="manager2",
                               state_dir=m1.info.get("state_dir"), extra=MESH)
    _, rejoin = await h.chat_round(servants, servants, "rejoining", timeout=15)
    await h.wait_all([s.wait_log(r"registered as %s\b" % s.name, 15, since_err[s]) for s in servants],
                     "every servant registered with the restarted manager")
    await h.wait_all([s.wait_log(r"mesh: [12] neighbours", 10, since_err[s]) for s in servants],
                     "every servant was told its new neighbours")
    _, after = await h.chat_round(servants, servants, "after")
    await views(h, servants, "after")
    for tag, lines in (("before", before), ("outage", outage), ("rejoining", rejoin), ("after", after)):
        h.check_exactly_once(servants, lines, tag)
    h.check(not m2.find(r"cannot send", "stderr"), "manager2 sent every view and delta")


if __name__ == "__main__":
    main(test, "views_restart", budget=120)
