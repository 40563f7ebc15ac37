#!/usr/bin/env python3
"""A servant facing a hostile manager: hostile frames and XML on its manager session.

Since issue 9 the fake manager is a TLS server with the key alice is told to expect (the
key of the state dir the real manager later starts with): a manager alice trusts, turned
hostile.

  setup     a fake manager (this script) on port P; alice starts with --manager-port P
  rounds    on each connection the fake manager welcomes alice properly and sends a valid
            peer list (so alice registers and her reconnect backoff resets), then one hostile
            frame from the table: alice must close the session with a log line, stay alive,
            and come back (a new connection)
  finally   the fake manager goes away, a real manager starts on P: alice registers with it,
            bob joins, and alice and bob chat exactly once
"""
import asyncio
import os
import re

import harness
import hostile
from harness import DELIVERY, STARTUP, frame, main, random_id

# The key each peer entry carries since issue 9 (the fake's peers are never dialled long
# enough for it to matter whose it is); alice's own entry carries hers (FakeManager.keys).
SOME_KEY = "5d41402abc4b2a76b9719d911017c592" * 2


def peer_xml(id_, name, ip="127.0.0.1", port=4000, me=False, key=SOME_KEY):
    key = "<key>%s</key>" % key if key and harness.SECURE_LISTS else ""
    return ("<peer><id>%s</id><name>%s</name><ip>%s</ip><port>%s</port>%s<role>servant</role>"
            "<state>direct</state><mapping>none</mapping><me>%s</me></peer>"
            % (id_, name, ip, port, key, "TRUE" if me else "FALSE"))


def page(version, k, pages, tag, n=1):
    """Page k of pages of a list: n made-up peers (the last page marks its first as me)."""
    last = k == pages - 1
    peers = "".join(peer_xml(random_id(), "%s-%d" % (tag, i), me=last and i == 0) for i in range(n))
    return '<peers version="%d" page="%d" pages="%d">%s</peers>' % (version, k, pages, peers)


def hostile_frames(alice_id):
    many = "".join(peer_xml("%016x" % (i + 1), "p%d" % i, "10.255.%d.%d" % (i // 250, i % 250), 9)
                   for i in range(4097))
    dup = random_id()
    return [
        ("peers: DOCTYPE billion laughs", frame("peers", hostile.BILLION_LAUGHS.replace("ROOT", "peers"))),
        ("peers: external entity", frame("peers", hostile.XXE.replace("ROOT", "peers"))),
        ("peers: UTF-16 DOCTYPE", frame("peers", hostile.BILLION_LAUGHS.replace("ROOT", "peers").replace(
            '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16"))),
        ("peers: 4097 peers", frame("peers", '<peers version="9">%s</peers>' % many)),
        ("peers: the same id twice", frame("peers", '<peers version="9">%s%s</peers>' %
                                           (peer_xml(dup, "x"), peer_xml(dup, "y")))),
        ("peers: invalid port", frame("peers", '<peers version="9">%s</peers>' % peer_xml(random_id(), "x", port=0))),
        ("peers: invalid address", frame("peers", '<peers version="9">%s</peers>' %
                                         peer_xml(random_id(), "x", ip="evil.example.com"))),
        ("peers: nested 500 deep", frame("peers", hostile.nested(500, "peers", ' version="9"'))),
        ("peers: malformed", frame("peers", '<peers version="9"><peer>')),
        ("delta: garbage base", frame("delta", '<delta base="x" version="y"/>')),
        ("delta: invalid peer", frame("delta", '<delta base="1" version="2">%s</delta>' %
                                      peer_xml("NOTHEX", "x"))),
        ("delta: leave with an invalid id", frame("delta", '<delta base="1" version="2"><leave id="../../"/></delta>')),
        ("delta: neither peer nor leave", frame("delta", '<delta base="1" version="2"/>')),
        ("unknown frame type 0x7F", frame(0x7F, "<x/>")),
        ("a peer frame (chat) from the manager", frame("chat", '<chat origin="%s" name="m" seq="1">x</chat>' % random_id())),
        ("length 1 MiB + 1", frame("peers", length=1024 * 1024 + 1)),
        ("bad magic", b"HTTP/1.1 200 OK\r\n\r\n"),
        ("bad version", frame("peers", '<peers version="1"/>', version=7)),
        # Paged lists (issue 13): out of order, another version midway, a delta or a new list
        # midway, a last page that is not ours alone, too many pages, a delta's count off.
        ("peers pages: out of order", frame("peers", page(9, 0, 3, "p0")) + frame("peers", page(9, 2, 3, "p2"))),
        ("peers pages: the version switches midway", frame("peers", page(9, 0, 3, "p0")) +
         frame("peers", page(10, 1, 3, "p1"))),
        ("peers pages: a delta midway", frame("peers", page(9, 0, 2, "p0")) +
         frame("delta", '<delta base="9" version="10"><leave id="%s"/></delta>' % random_id())),
        ("peers pages: a new list before the last was whole", frame("peers", page(9, 0, 3, "p0")) +
         frame("peers", page(9, 0, 3, "p0"))),
        ("peers pages: a last page that is not ours alone", frame("peers", page(9, 0, 2, "p0")) +
         frame("peers", page(9, 1, 2, "p1", n=2))),
        ("peers pages: 99999 pages", frame("peers", page(9, 0, 99999, "p0"))),
        ("delta: 3 changes said, 1 sent", frame("delta", '<delta base="1" version="4"><leave id="%s"/></delta>' %
                                                random_id())),
    ] + ([
        # Since issue 9 every peer carries its key, and a relay assignment the relay's.
        ("peers: a peer without a key", frame("peers", '<peers version="9">%s</peers>' %
                                              peer_xml(random_id(), "x", key=None))),
        ("peers: a key of 63 hex", frame("peers", '<peers version="9">%s</peers>' %
                                         peer_xml(random_id(), "x", key=SOME_KEY[:63]))),
        ("peers: a key in upper case", frame("peers", '<peers version="9">%s</peers>' %
                                             peer_xml(random_id(), "x", key=SOME_KEY.upper()))),
        ("relay-assign without the relay's key", frame(
            "relay-assign", '<relay-assign relay="%s" name="r" ip="127.0.0.1" port="9" token="%s"/>' %
            (random_id(), "ab" * 16))),
    ] if harness.SECURE_LISTS else []) + [
        ("error frame forging a log line", hostile.log_injection("error")),
    ]


class FakeManager:
    """A manager played by the test on a free port: TLS with the key of the state dir
    "manager" (self.state_dir), the one the real manager that takes over later starts with
    and the one alice pins (self.fp). Connections come out of next() once their handshake is
    done; they stay open until the test closes them or stop()."""

    def __init__(self, h):
        self.h = h
        self.conns = asyncio.Queue()
        self.keys = {}  # servant id -> its raw key (hex), for the lists we send it
        self.state_dir, self.key = h.state_dir("manager") if h.secure else (None, None)
        self.fp = self.key.fp if self.key else None
        self._held = []

    async def start(self):
        async def on_conn(c):
            c.label = "alice@fake"
            held = asyncio.get_running_loop().create_future()
            self._held.append(held)
            await self.conns.put(c)
            await held
        self.server, self.port = await self.h.serve(on_conn, self.key, label="fake manager")

    async def next(self, timeout=STARTUP):
        return await asyncio.wait_for(self.conns.get(), timeout)

    async def stop(self):
        self.server.close()
        for f in self._held:
            if not f.done():
                f.set_result(None)
        await self.server.wait_closed()


async def register(h, c, assign_port, keys=None):
    """Plays the manager's side of registration; returns alice's id."""
    t, p = await c.read_frame()
    h.check(t == harness.MSG["hello"], "the servant opens with hello")
    m = re.search(rb'id="([0-9a-f]{16})".*port="(\d+)"', p)
    sid, port = m.group(1).decode(), int(m.group(2)) or assign_port
    await c.send_frame("welcome", '<welcome id="%s" ip="127.0.0.1" port="%d" heartbeat="1" timeout="3"/>' % (sid, port))
    while True:
        t, p = await c.read_frame()
        if t == harness.MSG["listening"]:
            break
    await c.send_frame("peers", '<peers version="1">%s</peers>' %
                       peer_xml(sid, "alice", port=port, me=True, key=(keys or {}).get(sid, SOME_KEY)))
    return sid, port


async def real_manager_takes_over(h, fake, alice, tag):
    """The fake manager goes, a real one starts on its port: alice registers with it, bob
    joins, and the two chat exactly once."""
    since = alice.mark("stderr")
    await fake.stop()
    m = await h.start_manager(port=fake.port, state_dir=fake.state_dir)
    await h.expect(alice.wait_log(r"registered as alice\b", STARTUP, since), "alice registered with the real manager")
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2, since={alice: since, bob: 0})
    _, lines = await h.chat_round([alice, bob], [alice, bob], tag)
    h.check_exactly_once([alice, bob], lines, tag)


async def test(h):
    fake = FakeManager(h)
    await fake.start()
    alice = await h.start_servant("alice", fake.port, wait_registered=False, manager_key=fake.fp)
    if h.secure:
        fake.keys[alice.id] = alice.info["key"].pub_hex
    assign = h.free_port()
    c = await fake.next()
    sid, port = await register(h, c, assign, fake.keys)
    await h.expect(alice.wait_log(r"registered as alice\b"), "alice registered with the fake manager")

    for name, data in hostile_frames(sid):
        since = alice.mark("stderr")
        await c.send(data)
        closed = await c.wait_closed_by_peer(DELIVERY)
        h.check(closed, "%s: alice closed the manager session" % name)
        hit = await alice.wait_log(r"manager \(127\.0\.0\.1:%d\) (closed: .*|reports an error.*)" % fake.port,
                                   DELIVERY, since)
        h.check(bool(hit.group(1)), "%s: alice logged \"%s\"" % (name, hit.group(1)[:120]))
        h.check(alice.alive, "alice alive after: %s" % name)
        c.close()
        c = await h.expect(fake.next(DELIVERY), "%s: alice reconnected" % name)
        await register(h, c, assign, fake.keys)
        await alice.wait_log(r"registered as alice\b", DELIVERY, since)

    await real_manager_takes_over(h, fake, alice, "after the hostile manager")

    log = alice.lines("stderr")
    forged = [l for l in log if l.startswith("12:00:00.000 natmesh: ")]
    h.check(not forged, "no log line forged by the manager %s" % forged[:1], fatal=False)


if __name__ == "__main__":
    main(test, "hostile_manager_link", budget=100)
