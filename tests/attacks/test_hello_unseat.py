#!/usr/bin/env python3
"""Attack (issue 9): a hello carrying bob's id unseats bob; repeated, bob flaps.

Ids are in every peer list. Before issue 9 a hello with bob's id from anyone replaced bob's
registration (the manager closed bob's session and listed the newcomer's address under bob's
id, so peers dialled the attacker); repeated, bob kept reconnecting. Now an id is the hash of
a key: the manager accepts a hello for an id only on a session that proved that key.

  who       does                                                   must see
  alice     servant                                                bob listed at bob's own
                                                                   address throughout
  bob       servant (the victim)                                   registered once, never
                                                                   replaced, never reconnecting
  mallory   5 rounds: a session with her own key says hello with   each refused (no welcome);
            bob's id and a port of hers, then listening            bob's line still reaches alice

Before issue 9 this fails: the manager welcomes every hello, the first one takes bob's
registration over ("bob (ID) reconnected: the new session takes its registration over") and
when the attacker's session goes, bob is gone from the list. Recorded on main at b96444a:
"not ok 6 - round 1: the manager does not welcome a hello with bob's id from another key"
(and rounds 2-5 likewise), "not ok 16 - bob's entry (address, port) in the manager's status:
[], before [('127.0.0.1', '20391')]", "not ok 18 - alice lists bob at his own address []".
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, MSG, RawServant, main  # noqa: E402

ROUNDS = 5


async def bob_entry(h, m, bob):
    st = await h.status(m)
    return [(s.get("ip"), s.get("port")) for s in st.findall("servant") if s.get("id") == bob.id]


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    before = await bob_entry(h, m, bob)
    h.check(len(before) == 1, "bob is listed once: %s" % before)
    bob_since = bob.mark("stderr")
    alice_since = alice.mark("stderr")
    key = h.new_key("mallory") if h.secure else None

    for i in range(1, ROUNDS + 1):
        mallory = RawServant(h, "bob", key=key, id_=bob.id)
        msince = m.mark("stderr")
        f = await mallory.hello(m)
        welcomed = f is not None and f[0] == MSG["welcome"]
        if welcomed:
            await mallory.conn.send_frame("listening", '<listening port="%d"/>' % mallory.port)
        else:
            why = f[1].decode("utf-8", "replace") if f and f[0] == MSG["error"] else "closed"
            h.note("round %d: the manager answered %s" % (i, why))
        h.check(not welcomed, "round %d: the manager does not welcome a hello with bob's id from another key" % i,
                fatal=False)
        h.check(not m.find(r"bob \(%s\) reconnected" % bob.id, "stderr", msince),
                "round %d: bob's registration was not taken over" % i, fatal=False)
        mallory.stop()

    # Bob was never replaced: one registration, alice never saw him leave or move.
    after = await bob_entry(h, m, bob)
    h.check(after == before, "bob's entry (address, port) in the manager's status: %s, before %s" % (after, before),
            fatal=False)
    again = bob.find(r"registered as bob\b", "stderr", bob_since)
    h.check(not again, "bob never had to register again (%d times)" % len(again), fatal=False)
    rows = [r for r in await alice.peers() if r[1] == "bob"]
    h.check(len(rows) == 1 and (rows[0][3], str(rows[0][4])) == before[0],
            "alice lists bob at his own address %s" % (rows,))
    h.check(not alice.find(r"peer (left|moved|changed): bob|peer bob (moved|changed)", "stderr", alice_since),
            "alice never saw bob leave or move")
    _, lines = await h.chat_round([bob], [alice, bob], "bob still talks")
    h.check_exactly_once([alice], lines, "bob still talks")


if __name__ == "__main__":
    main(test, "attack_hello_unseat", budget=90)
