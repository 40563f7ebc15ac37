#!/usr/bin/env python3
"""A peer whose primary address is dead but one of whose candidates answers is reached at
the candidate; a peer none of whose candidates answers makes one complaint per round, and
only then. The manager is played by the test (it lists what it likes), the peers by raw TLS
listeners holding their own keys; alice is the real servant.

  who     where                                     what alice must do
  fake    a TLS manager on 127.0.0.1                 welcome alice (seen as 192.0.2.200, so
  manager                                            no peer shares her public address)
  alice   the servant, listening on ::               report her local addresses in listening
  bob     primary 127.0.0.1:DEAD (nothing there),    dial the primary, then the <cand>: TLS with
          <cand kind="local"> at LOCAL:B (listening) bob's key, peer-hello, her line; no
                                                     complaint; "connected to bob at LOCAL:B
                                                     (local)"; /peers "direct via LOCAL:B (local)"
  carol   primary 127.0.0.1:DEAD2, <cand> LOCAL:DEAD3 complaints about carol (refused), the
          (nothing at either)                        log "cannot reach carol ... 1 other
                                                     candidate failed too"; /peers "no direct
                                                     path (2 candidates failed)"

LOCAL is the first IPv4 address alice reported (a non-loopback interface of this host): the
test is skipped on a host without one. Before issue 10 alice dialled the primary only: bob
never got her line, and every refusal was a complaint.
"""
import asyncio
import re
import socket
import xml.etree.ElementTree as ET

import harness
from harness import DELIVERY, STARTUP, Skip, main


def peer_xml(id_, name, key, ip, port, me=False, cands=()):
    c = "".join('<cand kind="%s" ip="%s" port="%d"/>' % k for k in cands)
    return ("<peer><id>%s</id><name>%s</name><ip>%s</ip><port>%d</port><key>%s</key><role>servant</role>"
            "<state>direct</state><mapping>none</mapping>%s<me>%s</me></peer>"
            % (id_, name, ip, port, key, c, "TRUE" if me else "FALSE"))


def source_address():
    """This host's IPv4 address on its default route (a UDP socket's connect sends nothing),
    or None: what the servant should find among its interface addresses."""
    for target in ("192.0.2.1", "198.51.100.1", "10.255.255.1", "8.8.8.8"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((target, 9))
            ip = s.getsockname()[0]
            if not ip.startswith("127.") and ip != "0.0.0.0":
                return ip
        except OSError:
            pass
        finally:
            s.close()
    return None


class FakeManager:
    def __init__(self, h):
        self.h = h
        self.state_dir, self.key = h.state_dir("manager")
        self.conns = asyncio.Queue()
        self.frames = []
        self._event = asyncio.Event()

    async def start(self):
        async def on_conn(c):
            await self.conns.put(c)
            await asyncio.get_running_loop().create_future()  # held until the test ends
        self.server, self.port = await self.h.serve(on_conn, self.key, label="fake manager")

    async def serve(self, c):
        """Keeps alice's session alive (acks heartbeats) and records what she sends."""
        while True:
            f = await c.read_frame(3600)
            if f is None:
                return
            self.frames.append(f)
            if f[0] == harness.MSG["heartbeat"]:
                await c.send_frame("heartbeat-ack", '<heartbeat-ack version="1"/>')
            self._event.set()
            self._event = asyncio.Event()

    def complaints(self, accused):
        return [f for f in self.frames if f[0] == harness.MSG["complaint"] and
                ET.fromstring(f[1]).get("accused") == accused]

    async def wait_complaint(self, accused, timeout=DELIVERY):
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.complaints(accused):
            ev = self._event
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise harness.WaitTimeout("no complaint about %s within %.1fs" % (accused, timeout))
            await harness._event_or_timeout(ev, left)
        return self.complaints(accused)[0]


async def test(h):
    if not h.secure:
        raise Skip("needs the programs of issue 9 or later")
    fake = FakeManager(h)
    await fake.start()
    alice = await h.start_servant("alice", fake.port, wait_registered=False, manager_key=fake.key.fp)
    c = await h.expect(fake.conns.get(), "alice connected to the fake manager")

    t, p = await c.read_frame()
    h.check(t == harness.MSG["hello"], "alice opens with hello")
    assign = h.free_port()
    await c.send_frame("welcome", '<welcome id="%s" ip="192.0.2.200" port="%d" heartbeat="1" timeout="3"/>'
                       % (alice.id, assign))
    while True:
        t, p = await c.read_frame()
        if t == harness.MSG["listening"]:
            break
    listening = ET.fromstring(p)
    addrs = [a.get("ip") for a in listening.iter("addr")]
    h.note("alice reported local addresses %s" % addrs)
    h.check(all(not a.startswith("127.") and a != "::1" and not a.lower().startswith("fe80") for a in addrs),
            "alice reported no loopback or link-local address (%s)" % addrs)
    host_ip = source_address()
    if host_ip:
        h.check(host_ip in addrs, "alice reported this host's address %s among her local addresses" % host_ip)
    local = ([a for a in addrs if ":" not in a] + [host_ip])[0]
    if not local:
        raise Skip("no non-loopback IPv4 address on this host to put a candidate on")

    # bob: listening at LOCAL on a port of its own; nothing at its primary.
    bob_key = h.new_key("bob")
    inbox = []
    got = asyncio.Event()

    async def bob_conn(peer):
        while True:
            f = await peer.read_frame(3600)
            if f is None:
                return
            inbox.append(f)
            got.set()
    _, bob_port = await h.serve(bob_conn, bob_key, host=local, label="bob")
    dead = [h.free_port() for _ in range(3)]
    carol_key = h.new_key("carol")
    peers = (peer_xml(alice.id, "alice", alice.info["key"].pub_hex, "192.0.2.200", assign, me=True) +
             peer_xml(bob_key.id, "bob", bob_key.pub_hex, "127.0.0.1", dead[0],
                      cands=[("local", local, bob_port)]) +
             peer_xml(carol_key.id, "carol", carol_key.pub_hex, "127.0.0.1", dead[1],
                      cands=[("local", local, dead[2])]))
    await c.send_frame("peers", '<peers version="1">%s</peers>' % peers)
    asyncio.ensure_future(fake.serve(c))
    await h.expect(alice.wait_log(r"registered as alice\b", STARTUP), "alice registered with the fake manager")

    # bob is reached at the candidate, with his key: peer-hello, then alice's line.
    await h.expect(alice.wait_log(r"connected to bob at %s:%d \(local\)" % (re.escape(local), bob_port), DELIVERY),
                   "alice: connected to bob at %s:%d (local)" % (local, bob_port))
    text = "over the LAN %s" % harness.random_id()
    await alice.send(text)
    deadline = asyncio.get_running_loop().time() + DELIVERY
    while not any(f[0] == harness.MSG["chat"] and text.encode() in f[1] for f in inbox):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            h.check(False, "bob received alice's line at his candidate address")
        got.clear()
        await harness._event_or_timeout(got, left)
    h.check(True, "bob received alice's line at his candidate address")
    h.check(inbox[0][0] == harness.MSG["peer-hello"], "alice said peer-hello first")

    # carol: every candidate refused; a complaint, and the round's summary in the log.
    comp = await h.expect(fake.wait_complaint(carol_key.id), "alice complained about carol")
    h.check_eq(ET.fromstring(comp[1]).get("reason"), "refused", "the complaint's reason")
    await h.expect(alice.wait_log(r"cannot reach carol at 127\.0\.0\.1:%d: .*; its 1 other candidate failed too"
                                  % dead[1], DELIVERY),
                   "alice logged that carol's primary and its other candidate failed")
    rows = {r[1]: r for r in await alice.peers()}
    h.check(re.search(r"direct via %s:%d \(local\)" % (re.escape(local), bob_port), rows["bob"][5]) is not None,
            "/peers: bob direct via %s:%d (local) (%s)" % (local, bob_port, rows["bob"][5]))
    h.check("no direct path (2 candidates failed)" in rows["carol"][5],
            "/peers: carol no direct path (2 candidates failed) (%s)" % rows["carol"][5])
    # bob's dead primary never made a complaint: a round that a candidate won is no failure.
    h.check_eq(len(fake.complaints(bob_key.id)), 0, "complaints about bob")


if __name__ == "__main__":
    main(test, "cand_fallback", budget=60)
