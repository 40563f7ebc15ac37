#!/usr/bin/env python3
"""A hello with a registered servant's id from a second connection that closes before
`listening` must not leave a list entry behind (docs/protocol.md: the new session replaces
the old one; if it then goes, the servant is gone). Since issue 9 the second session proves
the servant's own key (the servant reconnecting, or a copy of its key): a hello with its id
from another key is refused (tests/attacks/test_hello_unseat.py).

  setup    manager (heartbeat 1, timeout 3), alice and bob (real servants)
  round    a second connection says hello with bob's id and closes before listening:
           the manager closes bob's session (replaced), bob reconnects and registers again;
           status, alice's /peers and a fresh registration's list all agree
  x50      a raw servant registers (hello, listening); a second connection says hello with
           its id and closes before listening; the manager closes the raw servant's session
  then     natmesh-ctl status, alice's /peers and the list a fresh raw registration gets
           all list exactly alice and bob (and the fresh one): nothing accumulated, no entry
           without a live session
"""
import asyncio

import harness
from harness import DELIVERY, STARTUP, RawServant, main

ROUNDS = 50


async def hello_and_vanish(h, m, victim_id, victim_key, name):
    """A second connection (with the victim's key) says hello with victim_id, takes its
    welcome and closes. Returns once the manager has logged the close (its bookkeeping runs
    in the same loop turn, so anything asked afterwards sees the result)."""
    since = m.mark("stderr")
    second = RawServant(h, name, key=victim_key, id_=victim_id, listen=False, port=0)
    f = await second.hello(m)
    if not f or f[0] != harness.MSG["welcome"]:
        h.check(False, "%s was welcomed (got %r)" % (name, f))
    second.stop()
    await m.wait_log(r"servant %s \(127\.0\.0\.1:\d+\) closed" % name, DELIVERY, since)


async def views(h, m, alice):
    """({id: name} in the status, {id: name} in alice's /peers, {id: name} in the list a fresh
    raw registration gets, without that registration itself)."""
    st = await h.status(m)
    status = {s.get("id"): s.get("name") for s in st.findall("servant")}
    h.check_eq(int(st.get("servants")), len(status), "the status's servants count matches its entries")
    listed = {row[2]: row[1] for row in await alice.peers()}
    c, fid, fresh = await h.raw_register(m, "fresh")
    h.check(fresh.get(fid) == "fresh", "the fresh registration is in its own list")
    del fresh[fid]
    await c.send_frame("bye")
    h.check(await c.wait_closed_by_peer(), "the fresh registration said bye and was closed")
    c.close()
    return status, listed, fresh


async def check_agree(h, m, alice, want, what):
    status, listed, fresh = await views(h, m, alice)
    # Alice hears of changes by deltas, which the manager gathers for --delta-window-ms (20
    # ms by default): she may lag the status by that much.
    for _ in range(40):
        if listed == want:
            break
        await asyncio.sleep(0.05)
        listed = {row[2]: row[1] for row in await alice.peers()}
    h.check_eq(sorted(status.values()), sorted(want.values()), "%s: natmesh-ctl status lists" % what)
    h.check_eq(status, want, "%s: status ids" % what)
    h.check_eq(listed, want, "%s: alice's /peers" % what)
    h.check_eq(fresh, want, "%s: the list a fresh registration gets" % what)


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    ids = {s.name: s.find(r"registered as \S+ \(([0-9a-f]{16})\)", "stderr")[0].group(1)
           for s in (alice, bob)}
    want = {ids["alice"]: "alice", ids["bob"]: "bob"}
    await check_agree(h, m, alice, want, "before")

    # A real servant as the victim: it notices its session closed and registers again.
    since = bob.mark("stderr")
    await hello_and_vanish(h, m, ids["bob"], bob.info.get("key"), "imposter")
    await h.expect(bob.wait_log(r"registered as bob\b", STARTUP, since),
                   "bob registered again after its session was replaced")
    await check_agree(h, m, alice, want, "after bob's session was replaced")

    # Raw victims that do not come back: their entries must go with the second session.
    for i in range(ROUNDS):
        victim = RawServant(h, "victim%d" % i, listen=False, port=0)
        await victim.register(m)
        await hello_and_vanish(h, m, victim.id, victim.key, "ghost%d" % i)
        closed = await victim.conn.wait_closed_by_peer()
        victim.stop()
        if not closed:
            h.check(False, "round %d: the manager closed the replaced session" % i)
    h.check(True, "%d rounds: each replaced session was closed by the manager" % ROUNDS)
    await check_agree(h, m, alice, want, "after %d hellos that vanished before listening" % ROUNDS)

    # And the overlay still works.
    _, lines = await h.chat_round([alice, bob], [alice, bob], "after")
    h.check_exactly_once([alice, bob], lines, "after")


if __name__ == "__main__":
    main(test, "session_replace", budget=120)
