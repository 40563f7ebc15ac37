#!/usr/bin/env python3
"""Attack (issue 9): a line forged in another servant's name.

Before issue 9 an unregistered host connected to alice's peer port, said peer-hello with a
random id and sent a chat whose origin was bob's id, and alice printed "bob: I am bob, send
me your password". Now a peer connection is TLS, peer-hello must name the key the connection
proved (and that key must be listed for that id), and every line carries its origin's
signature, checked with the origin's key from the list.

  who       does                                                  must see
  alice     servant (the target)                                  no forged line, ever
  bob       servant (the one impersonated)                        his own fence line reaches alice
  mallory   a raw servant, registered with her own key (open      her own fence line, sent after
            mode); on fresh connections to alice's port:          each forgery on the same
              a. peer-hello with a random id, chat from bob      connection, is shown by alice
                 (the attack as it was: no key, no signature)     (or alice closes the connection):
              b. peer-hello with bob's id, chat from bob          so alice has read the forgery
              c. peer-hello with her own id, chat from bob       and dropped it
                 signed with her own key
              d. a stranger's key (listed nowhere) saying
                 peer-hello with mallory's id

Before issue 9 (plain TCP, no signatures) this fails: alice shows "bob: <forged>" for every
case. Recorded on main at b96444a: "not ok 11 - alice never showed a forged line: shown
[('bob', "I am bob, send me your password (a: random id, no key of bob's)"), ('bob', "... (b:
peer-hello with bob's id)"), ('bob', '... (c: her own id, line signed by her)'), ('bob', "...
(d: a stranger's key claiming mallory's id)")]".
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, RawServant, chat_doc, first_of, frame, main, random_id  # noqa: E402

FORGED = "I am bob, send me your password"


def signed(h, key, origin, name, seq, text, epoch=1):
    """A chat document as the programs of issue 9 expect (signed by key, whoever origin
    is); the older form before them."""
    if not h.secure:
        return chat_doc(origin, name, seq, text)
    return chat_doc(origin, name, seq, text, epoch=epoch, sig=key.sign_line(origin, epoch, seq, text))


async def read_or_closed(h, alice, c, fence):
    """Waits until alice shows mallory's fence line or closes the connection: either way she
    has read (and judged) everything sent before it on that connection."""
    which, _ = await first_of(shown=alice.wait_for_line(r"^mallory: %s$" % fence, DELIVERY),
                              closed=c.wait_closed_by_peer(DELIVERY))
    return {"shown": "alice showed the fence", "closed": "alice closed the connection"}.get(which, "neither")


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    since = alice.mark("stderr")
    mallory = RawServant(h, "mallory")
    await mallory.register(m)
    mallory.start()
    await h.expect(alice.wait_log(r"peer joined: mallory", DELIVERY, since), "mallory is in alice's list")
    port = [r for r in await alice.peers() if r[0]][0][4]
    seq = [100]

    async def attempt(label, hello_id, forger_key, conn_key):
        """One connection: peer-hello as hello_id, a line from bob signed by forger_key,
        then mallory's own signed fence line."""
        c = await h.connect(port, "mallory (%s)" % label, key=conn_key)
        seq[0] += 1
        text = "%s (%s)" % (FORGED, label)
        fence = "fence %s %s" % (label, random_id())
        data = frame("peer-hello", '<peer-hello id="%s" name="mallory"/>' % hello_id)
        data += frame("chat", signed(h, forger_key, bob.id, "bob", seq[0], text))
        seq[0] += 1
        data += frame("chat", signed(h, mallory.key, mallory.id, "mallory", seq[0], fence))
        await c.send(data)
        how = await read_or_closed(h, alice, c, fence)
        h.note("%s: %s" % (label, how))
        h.check(how != "neither", "%s: alice read the connection (%s)" % (label, how))
        c.close()

    stranger = h.stranger_key() if h.secure else None
    await attempt("a: random id, no key of bob's", random_id(), stranger, stranger)
    await attempt("b: peer-hello with bob's id", bob.id, mallory.key, mallory.key)
    await attempt("c: her own id, line signed by her", mallory.id, mallory.key, mallory.key)
    await attempt("d: a stranger's key claiming mallory's id", mallory.id, stranger, stranger)

    # bob's real line still reaches alice.
    _, lines = await h.chat_round([bob], [alice, bob], "bob's own line")
    forged = [(n, t) for n, t in alice.chat_lines() if t.startswith(FORGED)]
    h.check(not forged, "alice never showed a forged line%s" % (": shown %s" % forged if forged else ""))
    h.check_exactly_once([alice], lines, "bob's own line")
    mallory.stop()


if __name__ == "__main__":
    main(test, "attack_forged_line", budget=90)
