#!/usr/bin/env python3
"""Attack (issue 9): 1,024 idle peer-hello sockets make a servant refuse a new peer, whose
lines are then silently lost.

Before issue 9 a servant held at most 1,024 inbound connections, and one that had said
peer-hello was kept for ever: an attacker saying peer-hello on 1,024 connections and then
nothing left no room for a new peer, whose lines were lost without a complaint or a relay.
Now inbound connections are capped per address until authenticated, an authenticated peer
connection that stays idle is closed (3 heartbeat timeouts), and a publisher reconnects when
it has something to send.

  who        runs where      does                                         must see
  manager    127.0.0.1       -                                            -
  alice      127.0.0.1       the target                                   carol's line, and bob's
  bob        127.0.0.1       registered before the flood                  -
  mallory    127.0.0.3       registered with her own key (open mode);     -
                             1,024 connections to alice's port (TLS with
                             her key), each says peer-hello with her id,
                             then nothing; each alice closes is opened
                             again (at once if alice had held it)
  carol      127.0.0.1       joins while the flood runs, types a line     alice shows it within
                                                                          DELIVERY + 3 timeouts

Before issue 9 this fails: alice refuses carol's connection ("1024 inbound connections
open: refusing more") and carol's line never reaches her. Recorded on main at b96444a:
"not ok 9 - alice shows carol's line while the flood runs: alice: no stdout line matching
/^carol: carol's line during the flood .../ within 19.0s".
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, TIMEOUT, RawServant, frame, main, random_id  # noqa: E402
from attackers import Flood  # noqa: E402

SOCKETS = 1024


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    since = alice.mark("stderr")
    mallory = RawServant(h, "mallory")
    await mallory.register(m, local_host="127.0.0.3")
    mallory.start()
    await h.expect(alice.wait_log(r"peer joined: mallory", DELIVERY, since), "mallory is in alice's list")
    # bob's connection to alice is open before the flood.
    _, lines = await h.chat_round([bob], [alice, bob], "before the flood")
    port = [r for r in await alice.peers() if r[0]][0][4]

    flood = Flood(h, port, SOCKETS, key=mallory.key,
                  greeting=frame("peer-hello", '<peer-hello id="%s" name="mallory"/>' % mallory.id))
    took, still = await flood.start()
    h.note("flood: %d connections attempted in %.2fs: %s" % (SOCKETS, took, flood.describe()))
    try:
        carol = await h.start_servant("carol", m)
        await h.wait_peer_count([alice, bob, carol], 4)
        text = "carol's line during the flood %s" % random_id()
        await carol.send(text)
        hit = await h.expect(alice.wait_for_line(r"^carol: %s$" % text, DELIVERY + 3 * TIMEOUT),
                             "alice shows carol's line while the flood runs")
        h.note("flood now: %s" % flood.describe())
        _, lines = await h.chat_round([bob, carol], [alice, bob, carol], "during the flood")
        h.check_exactly_once([alice, bob, carol], lines, "during the flood")
    finally:
        await flood.stop()
        mallory.stop()


if __name__ == "__main__":
    main(test, "attack_idle_servant", budget=120)
