#!/usr/bin/env python3
"""The relay bookkeeping survives re-registrations: a relayed servant, or its relay, whose
manager session ends and that registers again is relayed (or relays) again at once, and a
relay's `clients` in natmesh-ctl status always equals the number of servants listing it as
their relay. Heartbeat 1 s, timeout 3 s; every step is made deterministic by freezing the
real process (SIGSTOP) while a raw connection plays its part, then thawing it.

  setup    alice, bob, carol; three liars complain about alice until the verdict: alice
           pulls from R (bob or carol)
  step 1   replaced: while alice is frozen a raw connection says hello with her id and
           listening; it takes her registration over and is sent her relay-assign (R).
           alice thaws, reconnects and takes it back: relayed by R, and she does not
           switch relays (the identical assignment is ignored)
  step 2   gone and back: while alice is frozen a raw hello with her id closes before
           listening, so the manager publishes her leave; alice thaws and registers again
           and is relayed by R at once (her verdict was remembered), not judged anew
  step 3   the relay reconnects: while R is frozen a raw connection with R's id and port
           takes R's registration over and is sent relay-serve naming alice; R's clients
           stay 1 throughout; R thaws and takes its registration back
  step 3b  the same, but the relay comes back from another port: its client is sent a new
           assignment (new token) for the new address, and again when the relay returns
  step 4   timed out: alice is frozen past the timeout and dropped; she thaws, registers
           again and is relayed again within three heartbeat intervals
  then     lines from everyone reach everyone exactly once, alice's through her relay
"""
import asyncio
import os
import signal
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, HEARTBEAT, STARTUP, RawServant  # noqa: E402
from complainers import get_relayed  # noqa: E402


async def books(h, m, alice_id, relay_id, what):
    """Checks the status: alice relayed by relay_id, and every servant's clients equal to
    the number of servants that list it as their relay."""
    st = await h.status(m)
    entries = st.findall("servant")
    alice = [s for s in entries if s.get("id") == alice_id]
    h.check(len(alice) == 1, "%s: alice is listed once (%d)" % (what, len(alice)))
    h.check_eq((alice[0].get("state"), alice[0].get("relay")), ("relayed", relay_id),
               "%s: alice's state and relay" % what)
    clients = {s.get("name"): int(s.get("clients")) for s in entries}
    assigned = {s.get("name"): sum(1 for c in entries if c.get("relay") == s.get("id")) for s in entries}
    h.check_eq(clients, assigned, "%s: clients in status == servants assigned to each" % what)
    return {s.get("name"): s for s in entries}


class Imposter:
    """A raw connection that registers with someone else's id: with the port the real one
    listens on (a process reconnecting from the same address), or with a port of its own
    that it listens on. Since issue 9 it holds that servant's key (a copy of its key.pem,
    as a servant restarted elsewhere would): a hello with its id from another key is
    refused (tests/attacks/test_hello_unseat.py)."""

    def __init__(self, h, m, id_, name, max_clients, port=None, key=None):
        self.h, self.m, self.id, self.name, self.max_clients = h, m, id_, name, max_clients
        self.rs = RawServant(h, name, key=key, id_=id_, max_clients=max_clients, listen=port is None, port=port)
        self.frames = []

    @property
    def port(self):
        return self.rs.port

    async def hello(self):
        f = await self.rs.hello(self.m)
        self.peer = self.rs.conn
        self.h.check(f is not None and f[0] == harness.MSG["welcome"], "the imposter of %s is welcomed (%s)" %
                     (self.name, f and f[1][:100]))

    async def listening(self):
        await self.peer.send_frame("listening", '<listening port="%d"/>' % self.port)

    async def wait_frame(self, kind):
        """The next frame of type kind (frames before it are kept in self.frames)."""
        deadline = time.monotonic() + DELIVERY
        while True:
            f = await self.peer.read_frame(max(0.1, deadline - time.monotonic()))
            if f is None:
                self.h.check(False, "the imposter of %s got %s before its session closed" % (self.name, kind))
            self.frames.append(f)
            if f[0] == harness.MSG[kind]:
                return ET.fromstring(f[1])

    def close(self):
        self.rs.stop()


def freeze(p):
    p.signal(signal.SIGSTOP)


async def thaw_and_reregister(h, p, since, what):
    p.signal(signal.SIGCONT)
    t0 = time.monotonic()
    hit = await h.expect(p.wait_log(r"registered as %s\b" % p.name, STARTUP, since),
                         "%s: %s registered again" % (what, p.name))
    return t0, hit


async def test(h):
    m = await h.start_manager()
    # alice runs with --no-reverse: what is tested is the relay bookkeeping, so her peers'
    # lines must come through her relay, not back on her own connections to them
    # (connection reversal would put her relay on standby at once).
    sv = {n: await h.start_servant(n, m, extra=("--no-reverse",) if n == "alice" else ())
          for n in ("alice", "bob", "carol")}
    alice = sv["alice"]
    await h.wait_peer_count(list(sv.values()), 3)
    liars, relay = await get_relayed(h, m, alice)
    rname, rid = relay.get("name"), relay.get("id")
    R = sv[rname]
    st = await h.status(m)
    aid = [s.get("id") for s in st.findall("servant") if s.get("name") == "alice"][0]
    await books(h, m, aid, rid, "after the verdict")
    assigned_at = alice.mark("stderr")

    # 1. A new session of alice takes her registration over, and gives it back.
    freeze(alice)
    since = alice.mark("stderr")
    imp = Imposter(h, m, aid, "alice", 0, key=alice.info.get("key"))
    await imp.hello()
    await imp.listening()
    a = await imp.wait_frame("relay-assign")
    h.check_eq(a.get("relay"), rid, "step 1: the new session is sent alice's relay-assign at listening")
    h.check(len(a.get("token", "")) == 32, "step 1: with a token")
    await books(h, m, aid, rid, "step 1, the new session holds the registration")
    await thaw_and_reregister(h, alice, since, "step 1")
    h.check(await imp.peer.wait_closed_by_peer(), "step 1: alice's return closed the other session")
    imp.close()
    await books(h, m, aid, rid, "step 1, alice holds it again")

    # 2. A hello with her id that vanishes before listening: alice leaves the list, comes
    #    back and gets her verdict (and relay) back at once.
    freeze(alice)
    since, msince = alice.mark("stderr"), m.mark("stderr")
    imp = Imposter(h, m, aid, "alice", 0, key=alice.info.get("key"))
    await imp.hello()
    imp.close()
    await h.expect(m.wait_log(r"left: alice \(%s\)" % aid, DELIVERY, msince),
                   "step 2: the manager published alice's leave when the other session closed")
    await thaw_and_reregister(h, alice, since, "step 2")
    await h.expect(m.wait_log(r"alice \(%s\) was judged unreachable before it reconnected" % aid, DELIVERY, msince),
                   "step 2: the manager remembered alice's verdict")
    h.check(not m.find(r"verdict: alice", "stderr", msince), "step 2: alice was not judged anew")
    await books(h, m, aid, rid, "step 2, alice is back")

    # 3. The relay's session is taken over by a new one (a relay reconnecting).
    freeze(R)
    rsince = R.mark("stderr")
    imp = Imposter(h, m, rid, rname, 8, port=int(relay.get("port")), key=R.info.get("key"))
    await imp.hello()
    await books(h, m, aid, rid, "step 3, between the relay's hello and listening")
    await imp.listening()
    serve = await imp.wait_frame("relay-serve")
    h.check_eq([c.get("id") for c in serve.findall("client")], [aid],
               "step 3: the relay's new session is sent relay-serve with its client")
    await books(h, m, aid, rid, "step 3, the new session holds the relay's registration")
    await thaw_and_reregister(h, R, rsince, "step 3")
    h.check(await imp.peer.wait_closed_by_peer(), "step 3: the relay's return closed the other session")
    imp.close()
    await books(h, m, aid, rid, "step 3, the relay holds it again")

    # Through all of this alice kept the relay and token she was first assigned.
    h.check(not alice.find(r"relay reassigned|judged us unreachable", "stderr", assigned_at),
            "alice never switched relays: every assignment she was sent again was identical")

    # 3b. The relay reconnects from another address: its client is sent a new assignment
    #     (a new token, or it would keep pulling from the old address), then the old one
    #     when the relay comes back.
    freeze(R)
    rsince, asince = R.mark("stderr"), alice.mark("stderr")
    imp = Imposter(h, m, rid, rname, 8, key=R.info.get("key"))
    await imp.hello()
    await imp.listening()
    serve = await imp.wait_frame("relay-serve")
    h.check_eq([c.get("id") for c in serve.findall("client")], [aid],
               "step 3b: the moved relay's session is sent relay-serve with its client")
    await h.expect(alice.wait_log(r"relay %s at 127\.0\.0\.1:%d assigned" % (rname, imp.port), DELIVERY, asince),
                   "step 3b: alice is assigned the relay's new address")
    await books(h, m, aid, rid, "step 3b, the relay moved")
    await thaw_and_reregister(h, R, rsince, "step 3b")
    h.check(await imp.peer.wait_closed_by_peer(), "step 3b: the relay's return closed the other session")
    imp.close()
    await h.expect(alice.wait_log(r"relay %s at 127\.0\.0\.1:%s assigned" % (rname, relay.get("port")), DELIVERY,
                                  asince), "step 3b: alice is assigned the relay's address again")
    await books(h, m, aid, rid, "step 3b, the relay is back")

    # 4. Frozen past the timeout: dropped, back, relayed again within three heartbeats.
    msince = m.mark("stderr")
    since = alice.mark("stderr")
    freeze(alice)
    await h.expect(m.wait_log(r"left: alice \(%s\) no heartbeat" % aid, DELIVERY, msince),
                   "step 4: the manager dropped the frozen alice")
    t0, _ = await thaw_and_reregister(h, alice, since, "step 4")
    hit = await h.expect(m.wait_log(r"relay: alice pulls from \S+ %s " % rname, DELIVERY, msince),
                         "step 4: alice is relayed by %s again" % rname)
    took = hit.line.t - t0
    h.check(took <= 3 * HEARTBEAT, "step 4: relayed again %.2fs after she thawed (<= 3 heartbeats)" % took)
    await books(h, m, aid, rid, "step 4, alice is back")

    # Lines flow, exactly once.
    servants = list(sv.values())
    _, lines = await h.chat_round(servants, servants, "after")
    h.check_exactly_once(servants, lines, "after")
    await books(h, m, aid, rid, "at the end")
    for l in liars:
        l.stop()


if __name__ == "__main__":
    harness.main(test, "relay_reregister", budget=120)
