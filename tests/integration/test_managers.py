#!/usr/bin/env python3
"""Two managers, one overlay, state shared through a real redis-server (issue 14).

  step                               who                      must see
  1. a and b share redis; s1, s2     every servant            a list of all four; lines
     register with a, s3, s4 with b                           everywhere, exactly once
  2. natmesh-ctl status on a and b   both managers            all four, each with the
                                                              manager that holds it
  2b. redis drops every connection   a, b                     reconnect; no list resent
  3. s4 says bye (on b)              s1, s2 (on a)            s4 left; lists of three
  4. redis is killed                 a, b                     say the store is down;
                                                              chat goes on, nobody leaves
  5. s5 joins a while redis is down  s1, s2                   s5 (b's servants cannot yet)
  6. redis comes back, empty         a, b                     reconcile: s3 hears of s5,
                                                              nobody prints a leave;
                                                              lines exactly once
"""
import asyncio
import os
import signal

import harness
from harness import main
import store_fixture


def holders(st):
    return {s.get("name"): s.get("manager") for s in st.findall("servant")}


async def test(h):
    redis = await store_fixture.RedisServer(h).start()
    a, b = await store_fixture.start_managers(h, redis.url)
    # 1. One overlay: each servant lists all four, whichever manager it registered with.
    s1, s2, s3, s4 = everyone = await store_fixture.four_servants(h, a, b, "two managers")

    # 2. Either manager shows the whole overlay, and who holds each servant.
    for m in (a, b):
        st = await h.status(m)
        h.check_eq(holders(st), {"s1": "a", "s2": "a", "s3": "b", "s4": "b"},
                   "natmesh-ctl status on %s: every servant with its manager" % m.name)

    # 2b. The store's connections blink (the server drops them; nothing in it changes): the
    # managers reconnect and reconcile without sending anyone a list again.
    msince = {m: m.mark("stderr") for m in (a, b)}
    killed = await redis.cli("CLIENT", "KILL", "TYPE", "normal")
    h.note("redis-cli CLIENT KILL TYPE normal: %s" % killed.strip())
    await h.wait_all([m.wait_log(r"store: overlay version \d+: .*the lists here are current", 10, msince[m])
                      for m in (a, b)], "after a blink both managers find their lists current")

    # 3. A leave through b reaches a's servants.
    await s4.stop()
    await h.wait_all([s.wait_log(r"peer left: s4\b", 10) for s in (s1, s2)],
                     "s1 and s2 (on a) hear that s4 (on b) left")
    rest = [s1, s2, s3]

    # 4. The store goes away: managers say so, chat goes on, nobody leaves.
    since = {s: s.mark("stderr") for s in rest}
    msince = {m: m.mark("stderr") for m in (a, b)}
    await redis.kill()
    await h.wait_all([m.wait_log(r"store: .*serving the \d+ servants held here from memory", 10, msince[m])
                      for m in (a, b)], "both managers say the store is down")
    _, lines = await h.chat_round(rest, rest, "no store")
    h.check_exactly_once(rest, lines, "without the store")

    # 5. A newcomer while the store is down: a's servants hear of it at once.
    s5 = await h.start_servant("s5", a)
    await h.wait_peer_count([s1, s2, s5], 4, since=since)

    # 6. The store comes back with nothing in it: the managers write their servants again
    # and b's servants learn of s5; nobody prints a leave for anyone.
    before = {s: s.mark("stderr") for s in rest + [s5]}
    await redis.start()
    await h.wait_all([m.wait_log(r"store: overlay version \d+", 15, msince[m]) for m in (a, b)],
                     "both managers reconcile with the store")
    allnow = rest + [s5]
    await h.wait_peer_count(allnow, 4, since=since, timeout=15)
    # Since the kill for the three, since the restart for s5 (new to b's servants).
    store_fixture.check_no_churn(h, allnow, {**since, s5: before[s5]}, ["s1", "s2", "s3"],
                                 "while the store was away")
    _, lines = await h.chat_round(allnow, allnow, "store back")
    h.check_exactly_once(allnow, lines, "after the store came back")
    st = await h.status(b)
    h.check_eq(holders(st), {"s1": "a", "s2": "a", "s3": "b", "s5": "a"},
               "natmesh-ctl status on b after the store came back")


if __name__ == "__main__":
    main(test, "managers")
