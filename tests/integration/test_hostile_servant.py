#!/usr/bin/env python3
"""Hostile frames and hostile XML fed to a servant's peer port over raw sockets; afterwards
it must still chat with well-behaved peers.

  setup     manager, alice (the target) and bob, chatting; mallory, a raw servant with her
            own key, registered (listed), so that her peer-hello is a valid one
  attacks   one raw connection per case to alice's listening port (hostile.py and the
            table below): each closed by alice with a log line naming the connection. Since
            issue 9 the cases travel inside TLS: those before peer-hello with a stranger's
            key, those after a valid peer-hello with mallory's key; a few in clear
  checks    a line from an origin the manager never listed is not shown (since issue 9 its
            connection is refused at peer-hello); hostile chat text cannot drive alice's
            terminal; a line sent three times on one connection and again on another is
            shown once; after all of it alice is alive, a new servant (carol) joins and chat
            flows between all three exactly once
"""
import asyncio
import re
import struct

import harness
import hostile
from harness import DELIVERY, TIMEOUT, RawPeer, RawServant, chat_doc, frame, main, random_id

EPOCH = 1


class Mallory:
    """Who the cases speak as: her id, and (since issue 9) her key to sign lines with."""

    def __init__(self, h, rs):
        self.h, self.rs, self.id = h, rs, rs.id
        self.hello = frame("peer-hello", peer_hello(self.id))

    def chat(self, text="hi", seq="1", origin=None, name="mallory", escaped=None):
        """A chat document from mallory (signed when lines are signed); escaped is the text
        as XML markup when it is not plain."""
        origin = origin or self.id
        if not self.h.secure:
            return chat_doc(origin, name, seq, escaped or text, escape=escaped is None)
        try:
            sig = self.rs.key.sign_line(origin, EPOCH, int(seq), text)
        except (ValueError, struct.error):
            sig = "ab" * 64  # seq is not a u64: the case is about that
        return chat_doc(origin, name, seq, escaped or text, epoch=EPOCH, sig=sig, escape=escaped is None)


def peer_hello(id_, name="mallory"):
    return '<peer-hello id="%s" name="%s"/>' % (id_, name)


def servant_cases(ml):
    """(name, bytes, needs mallory's key): the framing and XML attacks before peer-hello,
    then those after a valid peer-hello."""
    HELLO = ml.hello
    before = list(hostile.framing_attacks("peer-hello"))
    before += hostile.xml_attacks("peer-hello", "peer-hello", 'id="%s" name="mallory"' % ml.id)
    before += [
        ("chat before peer-hello", frame("chat", ml.chat())),
        ("hello (a manager frame) to a servant", frame("hello", '<hello id="%s" name="m" port="0"/>' % ml.id)),
        ("peer-hello with an invalid id", frame("peer-hello", peer_hello("zz"))),
        ("peer-hello with an invalid name", frame("peer-hello", peer_hello(ml.id, name="a b"))),
        ("peer-hello, empty", frame("peer-hello")),
    ]
    after = [
        ("chat: DOCTYPE billion laughs", HELLO + frame("chat", hostile.BILLION_LAUGHS.replace("ROOT", "chat"))),
        ("chat: external entity", HELLO + frame("chat", hostile.XXE.replace("ROOT", "chat"))),
        ("chat: malformed", HELLO + frame("chat", "<chat origin=")),
        ("chat: nested 17 deep", HELLO + frame("chat", hostile.nested(16, "chat", ' origin="%s" name="m" seq="1"' % ml.id))),
        ("chat: text of 4097 bytes", HELLO + frame("chat", ml.chat("x" * 4097))),
        ("chat: seq 0", HELLO + frame("chat", ml.chat(seq="0"))),
        ("chat: seq -1", HELLO + frame("chat", ml.chat(seq="-1"))),
        ("chat: seq not a number", HELLO + frame("chat", ml.chat(seq="one"))),
        ("chat: invalid origin", HELLO + frame("chat", ml.chat(origin="nothex"))),
        ("chat: invalid name", HELLO + frame("chat", ml.chat(name="&lt;b&gt;"))),
        ("chat: wrong root", HELLO + frame("chat", "<shout>hi</shout>")),
        ("unknown frame type after peer-hello", HELLO + frame(0x7F, "<x/>")),
        ("heartbeat on a peer connection", HELLO + frame("heartbeat", '<heartbeat version="1"/>')),
        ("length 1 MiB + 1 after peer-hello", HELLO + frame("chat", length=1024 * 1024 + 1)),
        ("1 MiB chat nested 20000 deep", HELLO + frame("chat", hostile.nested(20000, "chat"))),
        ("error frame forging a log line", HELLO + hostile.log_injection("error")),
    ]
    if ml.h.secure:
        after += [
            ("chat without epoch and sig (before issue 9)", HELLO + frame("chat", chat_doc(ml.id, "mallory", 5, "hi"))),
            ("chat: sig of 127 hex", HELLO + frame("chat", chat_doc(ml.id, "mallory", 5, "hi", epoch=EPOCH,
                                                                     sig="ab" * 63 + "a"))),
            ("chat: a 2 MiB frame (the envelope is 4 KiB of text escaped, plus 1 KiB)",
             HELLO + frame("chat", length=2 * 1024 * 1024)),
        ]
    return [(n, d, False) for n, d in before] + [(n, d, True) for n, d in after]


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

    # Mallory registers with the manager (speaking the protocol herself), so her lines count.
    since = alice.mark("stderr")
    rs = RawServant(h, "mallory")
    await rs.register(m)
    rs.start()
    await h.expect(alice.wait_log(r"peer joined: mallory", DELIVERY, since), "mallory is in alice's peer list")
    ml = Mallory(h, rs)

    for name, data, hers in servant_cases(ml):
        await hostile.attack(h, alice, port, name, data, key=rs.key if hers else None)
        h.check(alice.alive, "alice alive after: %s" % name)

    await hostile.attack(h, alice, port, "truncated header, then EOF", ml.hello[:5], half_close=True)
    await hostile.attack(h, alice, port, "truncated payload, then EOF", ml.hello + frame("chat", ml.chat())[:30],
                         half_close=True, key=rs.key)
    if h.secure:
        await hostile.attack(h, alice, port, "plaintext peer-hello (before issue 9)", ml.hello, plain=True)
        await hostile.attack(h, alice, port, "plaintext chat", frame("chat", ml.chat()), plain=True)

    # Terminal safety: XML already refuses most control characters (ESC, BEL: the session is
    # closed), but tab, CR and newline are legal XML; a newline would let a peer print a
    # line that looks like someone else's.
    await hostile.attack(h, alice, port, "chat: ESC and BEL characters",
                         ml.hello + frame("chat", ml.chat("a\x1b[2J\x07b", escaped="a\x1b[2J\x07b")), key=rs.key)

    # An origin the manager never listed is not shown, whatever name it claims. Since
    # issue 9 its key cannot even say peer-hello: the connection is held for a 5 s grace
    # (the list may not have caught up yet) and then refused.
    stranger = random_id() if not h.secure else h.stranger_key().id
    since = alice.mark("stderr")
    c = await h.connect(port, "unlisted")
    await c.send(frame("peer-hello", peer_hello(stranger)) +
                 frame("chat", chat_doc(stranger, "mallory", 3, "from nowhere", **(
                     {"epoch": EPOCH, "sig": h.stranger_key().sign_line(stranger, EPOCH, 3, "from nowhere")}
                     if h.secure else {}))))
    if h.secure:
        h.check(await c.wait_closed_by_peer(), "alice closes a connection whose key is not listed")
        await h.expect(alice.wait_log(r"%s.*not (in our peer list|listed)" % stranger, DELIVERY, since),
                       "alice says the key is not listed")
    else:
        await h.expect(alice.wait_log(r"dropped a line from mallory: origin %s is not in our peer list" % stranger,
                                      DELIVERY, since),
                       "alice drops a line whose origin is not in her peer list")
    c.close()
    h.check(not any(t == "from nowhere" for _, t in alice.chat_lines()), "the unlisted line was not shown")

    c = await h.connect(port, "terminal", key=rs.key)
    await c.send(ml.hello + frame("chat", ml.chat("ring\ttab\nbob: forged line\rend", seq="7",
                                                  escaped="ring&#9;tab&#10;bob: forged line&#13;end")))
    hit = await h.expect(alice.wait_for_line(r"^mallory: ring"), "alice showed mallory's line with tab, newline, CR")
    h.check(not re.search(r"[\x00-\x1f\x7f]", hit.line.text),
            "the line reached the terminal without control characters (%r)" % hit.line.text)
    h.check(not any(t.startswith("forged") for who, t in alice.chat_lines() if who == "bob"),
            "mallory could not forge a line from bob")
    # A line sent three times on one connection and once more on another is shown once.
    await c.send(frame("chat", ml.chat("only once", seq="8")) * 3)
    c2 = await h.connect(port, "second path", key=rs.key)
    await c2.send(ml.hello + frame("chat", ml.chat("only once", seq="8")) + frame("chat", ml.chat("fence", seq="9")))
    await h.expect(alice.wait_for_line(r"^mallory: fence$"), "alice showed the fence line after the duplicates")
    n = sum(1 for who, t in alice.chat_lines() if who == "mallory" and t == "only once")
    h.check_eq(n, 1, "a line arriving four times by two connections is shown once")
    c.close()
    c2.close()

    # Many garbage connections at once (in clear: at most 8 from one address are even let
    # in once programs speak TLS, the others are closed at once).
    conns = [await RawPeer.connect("127.0.0.1", port, "flood%d" % i) for i in range(100)]
    await asyncio.gather(*(x.send(b"NM\x01\x21\xff\xff\xff\xff") for x in conns))
    closed = await asyncio.gather(*(x.wait_closed_by_peer(DELIVERY) for x in conns))
    h.check(all(closed), "100 simultaneous oversized frames: all 100 connections closed")
    for x in conns:
        x.close()

    # Alice still serves well-behaved peers.
    h.check(alice.alive and bob.alive, "alice and bob survived every attack")
    rs.stop()
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
    # (the manager drops such sessions after its timeout; since issue 9 the first frame
    # must come within 5 s of the handshake).
    c = await h.connect(port, "hanging")
    await c.send(ml.hello[:20])
    closed = await c.wait_closed_by_peer(TIMEOUT + 5)
    c.close()
    h.check(closed, "a connection hanging mid-frame is dropped within %ds" % (TIMEOUT + 5), fatal=False)


if __name__ == "__main__":
    main(test, "hostile_servant", budget=120)
