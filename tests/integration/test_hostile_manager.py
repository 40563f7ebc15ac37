#!/usr/bin/env python3
"""Hostile frames and hostile XML fed to the manager over raw sockets; afterwards it must
still serve well-behaved servants.

  setup     manager (heartbeat 1, timeout 3), alice and bob registered and chatting
  attacks   one raw connection per case (table below, and hostile.py): each must be closed
            by the manager, with a log line naming the connection and why. Since issue 9
            the cases travel inside TLS with a stranger's key (its id is the hellos' default
            id, so only the field under test is wrong); a few are sent in clear, and a
            session that never starts TLS, or never speaks after it, is dropped by its
            deadline (10 s handshake, 5 s first frame)
  then      the manager is alive, alice and bob are still listed, a new servant (carol)
            joins, chat flows between all three exactly once, natmesh-ctl status works,
            and nothing an attacker sent was echoed raw into the manager's log
"""
import asyncio
import re

import harness
import hostile
from harness import DELIVERY, TIMEOUT, RawPeer, RawServant, frame, main, random_id

# The id the hellos carry by default: the stranger's (the key the attacks are sent with)
# once programs hold keys, so only the field under test is wrong.
DEFAULT_ID = None


def hello(name="stranger", id_=None, port=40000, role="servant"):
    return '<hello id="%s" name="%s" role="%s" port="%d"/>' % (id_ or DEFAULT_ID or random_id(), name, role, port)


def manager_cases():
    cases = [(n, b) for n, b in hostile.framing_attacks("hello")]
    cases += hostile.xml_attacks("hello", "hello", 'id="%s" name="stranger" port="0"' % (DEFAULT_ID or random_id()))
    cases += [
        ("heartbeat before hello", frame("heartbeat", '<heartbeat version="0"/>')),
        ("listening before hello", frame("listening", '<listening port="4000"/>')),
        ("peers-request before hello", frame("peers-request")),
        ("bye before hello", frame("bye")),
        ("complaint before hello", frame("complaint", '<complaint accused="%s" reason="refused"/>' % random_id())),
        ("chat (a peer frame) to the manager", frame("chat", '<chat origin="%s" name="x" seq="1">hi</chat>' % random_id())),
        ("hello with an invalid id", frame("hello", hello(id_="NOT-HEX-AT-ALL!!"))),
        ("hello with a 33-character name", frame("hello", hello(name="n" * 33))),
        ("hello with markup in the name", frame("hello", hello(name="&lt;script&gt;"))),
        ("hello with a name forging a log line", frame("hello", hello(name="a&#10;joined: forged"))),
        ("hello with port 70000", frame("hello", hello(port=70000))),
        ("hello with port -1", frame("hello", hello().replace('port="40000"', 'port="-1"'))),
        ("hello with role king", frame("hello", hello(role="king"))),
        ("hello without attributes", frame("hello", "<hello/>")),
        ("hello, empty payload", frame("hello")),
        ("hello twice", frame("hello", hello(port=40001)) + frame("hello", hello(port=40002))),
        ("error frame forging a log line", hostile.log_injection("error")),
    ]
    return cases


async def attack(h, m, name, data, close_within=DELIVERY, half_close=False, plain=False):
    """Sends data on a fresh connection; the manager must close it and log why."""
    return await hostile.attack(h, m, m.info["port"], name, data, close_within, half_close, plain=plain)


async def registered_mallory(h, m):
    """A raw session that registers properly (her own key), so the 1 MiB limit applies."""
    mallory = RawServant(h, "mallory", listen=False, port=0)
    f = await mallory.hello(m)
    h.check(f is not None and f[0] == harness.MSG["welcome"], "mallory welcomed (%s)" % (f and f[1][:80]))
    mallory.port = int(re.search(rb'port="(\d+)"', f[1]).group(1))
    await mallory.listening()
    h.check(True, "mallory got the peer list")
    return mallory.conn, mallory.id


async def test(h):
    global DEFAULT_ID
    if h.secure:
        DEFAULT_ID = h.stranger_key().id
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)

    for name, data in manager_cases():
        await attack(h, m, name, data)
        h.check(m.alive, "manager alive after: %s" % name)

    # Version mismatch gets an error frame before the close (docs/protocol.md).
    c, _ = await attack(h, m, "bad version (error frame expected)", frame("hello", hello(), version=9))
    h.check(any(t == harness.MSG["error"] for t, _ in c.frames_before_close),
            "bad version: the manager sent an error frame before closing")

    # Truncated frames: cut off by a close, or left hanging (dropped by the timeout).
    await attack(h, m, "truncated header, then EOF", frame("hello", hello())[:5], half_close=True)
    await attack(h, m, "truncated payload, then EOF", frame("hello", hello())[:20], half_close=True)
    # Since issue 9 the deadline is the first frame's, 5 s after the TLS handshake.
    first_frame = 5 if h.secure else TIMEOUT
    _, took = await attack(h, m, "truncated payload, held open", frame("hello", hello())[:20],
                           close_within=first_frame + 3)
    h.check(took <= first_frame + 1.5, "a hanging truncated frame is dropped by the deadline (%.2fs)" % took)
    _, took = await attack(h, m, "connection that never speaks", b"", close_within=first_frame + 3)
    if h.secure:
        # Plaintext (a client from before issue 9), and TCP that never starts TLS.
        await attack(h, m, "plaintext hello", frame("hello", hello()), plain=True)
        await attack(h, m, "plaintext status-request", frame("status-request"), plain=True)
        _, took = await attack(h, m, "TCP that never starts TLS", b"", close_within=10 + 3, plain=True)
        h.check(took <= 10 + 1.5, "a connection that never starts TLS is dropped by the handshake deadline "
                "(%.2fs)" % took)

    # Many garbage connections at once (at most 8 from one address are even let in, once
    # programs speak TLS: the others are closed at once).
    since = m.mark("stderr")
    conns = [await RawPeer.connect("127.0.0.1", m.info["port"], "flood%d" % i) for i in range(100)]
    await asyncio.gather(*(c.send(b"NM\x01\x06\xff\xff\xff\xff") for c in conns))
    closed = await asyncio.gather(*(c.wait_closed_by_peer(DELIVERY) for c in conns))
    h.check(all(closed), "100 simultaneous oversized frames: all 100 sessions closed")
    for c in conns:
        c.close()

    # After registering, the limit is 1 MiB: larger is refused, a leave is published.
    for what, data in [
        ("registered: length 1 MiB + 1", frame("heartbeat", length=1024 * 1024 + 1)),
        ("registered: unknown frame type", frame(0x7F, "<x/>")),
        ("registered: 1 MiB DOCTYPE document", frame("mapping", hostile.BILLION_LAUGHS.replace("ROOT", "mapping")
                                                     .ljust(1024 * 1024))),
        ("registered: 1 MiB document nested 20000 deep", frame("mapping", hostile.nested(20000, "mapping"))),
        ("registered: hello again", frame("hello", hello())),
    ]:
        since = {s: s.mark("stderr") for s in (alice, bob)}
        c, mid = await registered_mallory(h, m)
        await h.wait_all([s.wait_log(r"peer joined: mallory", DELIVERY, since[s]) for s in (alice, bob)],
                         "%s: alice and bob saw mallory join" % what)
        await c.send(data)
        closed = await c.wait_closed_by_peer(DELIVERY)
        h.check(closed, "%s: the manager closed mallory's session" % what)
        await h.wait_all([s.wait_log(r"peer left: mallory", DELIVERY, since[s]) for s in (alice, bob)],
                         "%s: mallory's leave reached alice and bob" % what)
        c.close()
    # A well-formed 1 MiB document from a registered servant is merely big: no harm done.
    c, mid = await registered_mallory(h, m)
    await c.send(frame("mapping", hostile.padded("mapping", 'method="none"', 1024 * 1024)))
    await c.send_frame("heartbeat", '<heartbeat version="0"/>')
    while True:
        f = await c.read_frame()
        if f is None or f[0] == harness.MSG["heartbeat-ack"]:
            break
    h.check(f is not None, "a well-formed 1 MiB document is handled and the session goes on")
    await c.send_frame("bye")
    c.close()

    # The manager still serves everyone.
    h.check(m.alive, "the manager survived every attack")
    st = await h.status(m)
    names = sorted(s.get("name") for s in st.findall("servant"))
    h.check(names == ["alice", "bob"], "alice and bob are still registered, mallory is gone (%s)" % names)
    await hostile.newcomer_chats(h, m, alice, bob)

    # Nothing an attacker sent reached the log raw: no forged lines, no escape sequences.
    log = m.lines("stderr")
    forged = [l for l in log if "FORGED" in l and not l.startswith(tuple("0123456789")) or
              l.startswith("12:00:00.000 natmesh: ")]
    h.check(not forged, "no log line forged by an attacker %s" % forged[:1], fatal=False)
    h.check(not any("\x1b" in l or "\x07" in l for l in log), "no terminal escape sequences in the manager's log",
            fatal=False)
    h.check(not any(re.search(r"^joined: forged", l) for l in log), "no forged joined: line", fatal=False)


if __name__ == "__main__":
    main(test, "hostile_manager", budget=100)
