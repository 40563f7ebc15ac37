#!/usr/bin/env python3
"""Attack (issue 9): an anonymous status-request returns every servant's id and address.

Before issue 9 anyone who could reach the manager's port sent status-request and got the
status document: every servant's id, addresses, relay and load. Now the manager answers it
only on a session whose key is an operator's (the manager's own key, or one listed with
--admin-key).

  who        sends status-request                       must see
  a          plain TCP (no TLS at all)                  no status frame; alice's and bob's ids
  b          TLS with a stranger's key                  appear in nothing the manager sent
  c          TLS with mallory's key, admitted (open     (it closes the session, or says error,
             mode) and registered: on her manager        or stays silent: then a heartbeat
             session                                      round trip shows it read the request)
  d          TLS with mallory's key, a fresh session
  operator   natmesh-ctl with the manager's own key     the status, alice and bob in it

Before issue 9 this fails: a plain request gets the whole status. Recorded on main at
b96444a: "not ok 5 - a: plain TCP: no status frame, nothing naming alice or bob (got 734
bytes: b'<status version="2" heartbeat="1" timeout="3" servants="2"><servant
id="e76049ef043e9d03" name="bob"...')", and likewise for c and d (b needs TLS).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, MSG, RawPeer, RawServant, WaitTimeout, frame, main  # noqa: E402


async def answers(c, fence_frame=None, timeout=DELIVERY):
    """Frames the manager sends until it closes the connection, or until it answers the
    fence (a heartbeat on a registered session), or timeout."""
    got = []
    if fence_frame:
        await c.send(fence_frame)
    while True:
        try:
            f = await c.read_frame(timeout)
        except WaitTimeout:
            return got, "silent"
        if f is None:
            return got, "closed"
        got.append(f)
        if f[0] in (MSG["status"], MSG["error"]):
            return got, "answered"
        if fence_frame and f[0] == MSG["heartbeat-ack"]:
            return got, "acked the heartbeat after it"


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    ids = [alice.id, bob.id]
    mallory = RawServant(h, "mallory", listen=False)

    async def case(label, c, fence=None, member=False):
        """A member gets the peer list (ids, addresses) anyway: only a status frame is a leak
        on its session; on any other, whatever names alice or bob is."""
        await c.send_frame("status-request")
        got, how = await answers(c, fence)
        leaked = [f for f in got if f[0] == MSG["status"] or
                  (not member and any(i.encode() in f[1] for i in ids))]
        h.note("%s: %s, frames %s" % (label, how, [(t, p[:80]) for t, p in got]))
        h.check(not leaked, "%s: no status frame, nothing naming alice or bob%s" %
                (label, " (got %d bytes: %r)" % (len(leaked[0][1]), leaked[0][1][:100]) if leaked else ""),
                fatal=False)
        c.close()
        return not leaked

    ok = await case("a: plain TCP", await RawPeer.connect("127.0.0.1", m.info["port"], "plain"))
    if h.secure:
        ok &= await case("b: a stranger's key", await h.connect(m, "stranger"))
    await mallory.register(m)
    ok &= await case("c: mallory's manager session", mallory.conn,
                     frame("heartbeat", '<heartbeat version="%d"/>' % mallory.version), member=True)
    ok &= await case("d: mallory's key, a fresh session", await h.connect(m, "mallory again", key=mallory.key))
    mallory.stop()

    st = await h.status(m)
    h.check_eq(sorted(s.get("name") for s in st.findall("servant")), ["alice", "bob"],
               "the operator's natmesh-ctl status lists alice and bob")
    h.check(ok, "no one but the operator got the status")


if __name__ == "__main__":
    main(test, "attack_status_anonymous", budget=60)
