#!/usr/bin/env python3
"""Hostile frames and hostile XML fed to a servant's peer port over raw sockets; afterwards
it must still chat with well-behaved peers.

  setup     manager, alice (the target) and bob, chatting
  attacks   one raw connection per case to alice's listening port (hostile.py and the
            table below): each closed by alice with a log line naming the connection
  checks    hostile chat text cannot drive alice's terminal; a line sent three times on one
            connection and again on another is shown once; after all of it alice is alive,
            a new servant (carol) joins and chat flows between all three exactly once
"""
import asyncio
import re
import socket

import harness
import hostile
from harness import DELIVERY, TIMEOUT, RawPeer, frame, main, random_id

MALLORY = random_id()


def peer_hello(id_=MALLORY, name="mallory"):
    return '<peer-hello id="%s" name="%s"/>' % (id_, name)


def chat(text="hi", origin=MALLORY, name="mallory", seq="1"):
    return '<chat origin="%s" name="%s" seq="%s">%s</chat>' % (origin, name, seq, text)


HELLO = frame("peer-hello", peer_hello())


def servant_cases():
    cases = list(hostile.framing_attacks("peer-hello"))
    cases += hostile.xml_attacks("peer-hello", "peer-hello", 'id="%s" name="mallory"' % MALLORY)
    cases += [
        ("chat before peer-hello", frame("chat", chat())),
        ("hello (a manager frame) to a servant", frame("hello", '<hello id="%s" name="m" port="0"/>' % MALLORY)),
        ("peer-hello with an invalid id", frame("peer-hello", peer_hello(id_="zz"))),
        ("peer-hello with an invalid name", frame("peer-hello", peer_hello(name="a b"))),
        ("peer-hello, empty", frame("peer-hello")),
        # After a valid peer-hello.
        ("chat: DOCTYPE billion laughs", HELLO + frame("chat", hostile.BILLION_LAUGHS.replace("ROOT", "chat"))),
        ("chat: external entity", HELLO + frame("chat", hostile.XXE.replace("ROOT", "chat"))),
        ("chat: malformed", HELLO + frame("chat", "<chat origin=")),
        ("chat: nested 17 deep", HELLO + frame("chat", hostile.nested(16, "chat", ' origin="%s" name="m" seq="1"' % MALLORY))),
        ("chat: text of 4097 bytes", HELLO + frame("chat", chat("x" * 4097))),
        ("chat: seq 0", HELLO + frame("chat", chat(seq="0"))),
        ("chat: seq -1", HELLO + frame("chat", chat(seq="-1"))),
        ("chat: seq not a number", HELLO + frame("chat", chat(seq="one"))),
        ("chat: invalid origin", HELLO + frame("chat", chat(origin="nothex"))),
        ("chat: invalid name", HELLO + frame("chat", chat(name="&lt;b&gt;"))),
        ("chat: wrong root", HELLO + frame("chat", "<shout>hi</shout>")),
        ("unknown frame type after peer-hello", HELLO + frame(0x7F, "<x/>")),
        ("heartbeat on a peer connection", HELLO + frame("heartbeat", '<heartbeat version="1"/>')),
        ("length 1 MiB + 1 after peer-hello", HELLO + frame("chat", length=1024 * 1024 + 1)),
        ("1 MiB chat nested 20000 deep", HELLO + frame("chat", hostile.nested(20000, "chat"))),
        ("error frame forging a log line", HELLO + hostile.log_injection("error")),
    ]
    return cases


async def heartbeat(reg):
    while True:
        await reg.send_frame("heartbeat", '<heartbeat version="0"/>')
        await asyncio.sleep(harness.HEARTBEAT / 2)


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    me = [r for r in await alice.peers() if r[0]][0]
    port = me[4]
    h.note("alice listens on port %d" % port)

    for name, data in servant_cases():
        await hostile.attack(h, alice, port, name, data)
        h.check(alice.alive, "alice alive after: %s" % name)

    await hostile.attack(h, alice, port, "truncated header, then EOF", HELLO[:5], half_close=True)
    await hostile.attack(h, alice, port, "truncated payload, then EOF", HELLO + frame("chat", chat())[:30], half_close=True)

    # Terminal safety: XML already refuses most control characters (ESC, BEL: the session is
    # closed), but tab, CR and newline are legal XML; a newline would let a peer print a
    # line that looks like someone else's.
    await hostile.attack(h, alice, port, "chat: ESC and BEL characters", HELLO + frame("chat", chat("a\x1b[2J\x07b")))

    # An origin the manager never listed is not shown, whatever name it claims.
    c = await RawPeer.connect("127.0.0.1", port, "unlisted")
    await c.send(HELLO + frame("chat", chat("from nowhere", seq="3")))
    await h.expect(alice.wait_log(r"dropped a line from mallory: origin %s is not in our peer list" % MALLORY),
                   "alice drops a line whose origin is not in her peer list")
    c.close()
    h.check(not any(t == "from nowhere" for _, t in alice.chat_lines()), "the unlisted line was not shown")

    # Mallory registers with the manager (speaking the protocol herself), so her lines count.
    since = alice.mark("stderr")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    reg = await RawPeer.connect("127.0.0.1", m.info["port"], "mallory-manager")
    await reg.send_frame("hello", '<hello id="%s" name="mallory" role="servant" port="%d" max-clients="0"/>'
                         % (MALLORY, lsock.getsockname()[1]))
    await reg.read_frame()
    await reg.send_frame("listening", '<listening port="%d"/>' % lsock.getsockname()[1])
    await h.expect(alice.wait_log(r"peer joined: mallory", DELIVERY, since), "mallory is in alice's peer list")
    beat = asyncio.ensure_future(heartbeat(reg))
    c = await RawPeer.connect("127.0.0.1", port, "terminal")
    await c.send(HELLO + frame("chat", chat("ring&#9;tab&#10;bob: forged line&#13;end", seq="7")))
    hit = await h.expect(alice.wait_for_line(r"^mallory: ring"), "alice showed mallory's line with tab, newline, CR")
    h.check(not re.search(r"[\x00-\x1f\x7f]", hit.line.text),
            "the line reached the terminal without control characters (%r)" % hit.line.text)
    h.check(not any(t.startswith("forged") for who, t in alice.chat_lines() if who == "bob"),
            "mallory could not forge a line from bob")
    # A line sent three times on one connection and once more on another is shown once.
    await c.send(frame("chat", chat("only once", seq="8")) * 3)
    c2 = await RawPeer.connect("127.0.0.1", port, "second path")
    await c2.send(HELLO + frame("chat", chat("only once", seq="8")) + frame("chat", chat("fence", seq="9")))
    await h.expect(alice.wait_for_line(r"^mallory: fence$"), "alice showed the fence line after the duplicates")
    n = sum(1 for who, t in alice.chat_lines() if who == "mallory" and t == "only once")
    h.check_eq(n, 1, "a line arriving four times by two connections is shown once")
    c.close()
    c2.close()
    beat.cancel()
    reg.close()
    lsock.close()

    # Many garbage connections at once.
    conns = [await RawPeer.connect("127.0.0.1", port, "flood%d" % i) for i in range(100)]
    await asyncio.gather(*(x.send(b"NM\x01\x21\xff\xff\xff\xff") for x in conns))
    closed = await asyncio.gather(*(x.wait_closed_by_peer(DELIVERY) for x in conns))
    h.check(all(closed), "100 simultaneous oversized frames: all 100 connections closed")
    for x in conns:
        x.close()

    # Alice still serves well-behaved peers.
    h.check(alice.alive and bob.alive, "alice and bob survived every attack")
    await hostile.newcomer_chats(h, m, alice, bob)

    # Hardening checks, each reported on its own.
    log = alice.lines("stderr")
    forged = [l for l in log if l.startswith("12:00:00.000 natmesh: ")]
    h.check(not forged, "no log line forged by an attacker %s" % forged[:1], fatal=False)
    h.check(not any("\x1b" in l or "\x07" in l for l in log), "no terminal escape sequences in alice's log",
            fatal=False)
    h.check(not any("\x1b" in l for l in alice.lines("stdout")), "no terminal escape sequences on alice's stdout",
            fatal=False)
    # A connection that stops mid-frame holds a file descriptor; it must not be kept forever
    # (the manager drops such sessions after its timeout).
    since = alice.mark("stderr")
    c = await RawPeer.connect("127.0.0.1", port, "hanging")
    await c.send(HELLO[:20])
    closed = await c.wait_closed_by_peer(TIMEOUT + 5)
    c.close()
    h.check(closed, "a connection hanging mid-frame is dropped within %ds" % (TIMEOUT + 5), fatal=False)


if __name__ == "__main__":
    main(test, "hostile_servant", budget=100)
