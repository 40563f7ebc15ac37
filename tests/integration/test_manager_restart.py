#!/usr/bin/env python3
"""The manager dies mid-run and comes back on the same port; chat never stops.

  step                         who                         must see
  1. five servants chat        s1..s5, manager M1          lines everywhere, exactly once
  2. M1 is SIGKILLed           every servant               logs the manager unreachable
  3. chat during the outage    s1..s5 (peers they know)    lines everywhere, exactly once
  4. M2 starts on M1's port,   every servant               registers again; M2 logs 5 joins;
     chat while they rejoin                                lines everywhere, exactly once;
                                                           each holds a 5-peer list again;
                                                           natmesh-ctl shows all five
  5. chat after the restart    s1..s5                      lines everywhere, exactly once
"""
import signal

import harness
from harness import main

NAMES = ["s1", "s2", "s3", "s4", "s5"]


async def test(h):
    m1 = await h.start_manager(name="manager1")
    port, prange = m1.info["port"], m1.info["port_range"]
    servants = [await h.start_servant(n, m1) for n in NAMES]
    await h.wait_peer_count(servants, 5)
    _, before = await h.chat_round(servants, servants, "before")
    h.check_exactly_once(servants, before, "before")

    # 2. The manager crashes.
    since_err = {s: s.mark("stderr") for s in servants}
    m1.info["killed"] = True
    m1.signal(signal.SIGKILL)
    await m1.wait_exit()
    await h.wait_all([s.wait_log(r"manager .*unreachable", 10, since_err[s]) for s in servants],
                     "every servant noticed the manager is gone")

    # 3. Chat goes on with the peers they know.
    _, outage = await h.chat_round(servants, servants, "outage")
    h.check_exactly_once(servants, outage, "outage")

    # 4. The manager comes back on the same port; everyone re-registers.
    since_err = {s: s.mark("stderr") for s in servants}
    # The same manager: its state dir (its key, which every servant pins; its admissions).
    m2 = await h.start_manager(port=port, port_range=prange, name="manager2",
                               state_dir=m1.info.get("state_dir"))
    # Lines typed while the servants are re-registering (lists refilling one by one).
    _, rejoin = await h.chat_round(servants, servants, "rejoining")
    await h.wait_all([s.wait_log(r"registered as %s\b" % s.name, 15, since_err[s]) for s in servants],
                     "every servant registered with the restarted manager")
    for n in NAMES:
        await h.expect(m2.wait_log(r"joined: %s\b" % n), "manager2 logged joined: %s" % n)
    await h.wait_peer_count(servants, 5, since=since_err, timeout=15)
    st = await h.status(m2)
    h.check_eq(sorted(s.get("name") for s in st.findall("servant")), NAMES,
               "natmesh-ctl status on the restarted manager lists all five")
    # The same servants: they kept their ids across the restart.
    ids_before = {s.name: s.find(r"registered as \S+ \(([0-9a-f]{16})\)", "stderr")[0].group(1)
                  for s in servants}
    h.check_eq({s.get("name"): s.get("id") for s in st.findall("servant")}, ids_before,
               "each servant re-registered under its original id")

    # 5. Chat after the restart, and everything so far shown exactly once.
    _, after = await h.chat_round(servants, servants, "after")
    for tag, lines in (("before", before), ("outage", outage), ("rejoining", rejoin),
                       ("after", after)):
        h.check_exactly_once(servants, lines, tag)


if __name__ == "__main__":
    main(test, "manager_restart", budget=90)
