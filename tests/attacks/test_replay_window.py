#!/usr/bin/env python3
"""Attack (issue 9): a line is shown a second time after 16,384 others pushed it out of the
de-duplication set.

Before issue 9 a servant remembered the last 16,384 (origin, seq) pairs it had shown, in one
FIFO for all origins: a line replayed after 16,384 others was shown again. Now lines are
signed and de-duplicated per origin with a sequence window (nm_replay, as WireGuard's replay
window): a sequence number below the window, or one already seen, is refused however many
other lines came since.

  who       does                                                   must see
  bob       types L, then 16,400 more lines (in chunks of 1,000,   -
            each awaited at alice)
  mallory   registered with her own key (open mode), so bob        -
            publishes to her too: she keeps L's chat frame as bob
            sent it; then connects to alice as a peer (her own
            key, her own id) and sends L's frame again, then a
            fence line of her own on the same connection
  alice     receives everything                                    L exactly once (and
                                                                   mallory's fence: alice has
                                                                   read the replay)

Before issue 9 this fails: alice shows L twice. Recorded on main at b96444a: "not ok 10 -
alice shows L exactly once: got 2, expected 1".
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, MSG, RawServant, chat_doc, first_of, frame, main, random_id  # noqa: E402

OTHERS = 16400
CHUNK = 1000


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    since = {s: s.mark("stderr") for s in (alice, bob)}
    mallory = RawServant(h, "mallory")
    await mallory.register(m)
    mallory.start()
    await h.wait_all([s.wait_log(r"peer joined: mallory", DELIVERY, since[s]) for s in (alice, bob)],
                     "alice and bob list mallory")

    tag = random_id()
    L = "the line L %s" % tag
    await bob.send(L)
    await h.expect(alice.wait_for_line(r"^bob: %s$" % L), "alice shows L")
    _, _, payload = await h.expect(mallory.wait_inbox(
        lambda c, t, p: t == MSG["chat"] and L.encode() in p, DELIVERY, "L"), "mallory received L from bob")
    h.note("L as bob sent it: %s" % payload[:300])

    for start in range(0, OTHERS, CHUNK):
        n = min(CHUNK, OTHERS - start)
        bob.proc.stdin.write("".join("other %s %d\n" % (tag, start + i) for i in range(n)).encode())
        await bob.proc.stdin.drain()
        await alice.wait_for_line(r"^bob: other %s %d$" % (tag, start + n - 1), 60)
    h.check(True, "alice showed %d more lines from bob after L" % OTHERS)

    port = [r for r in await alice.peers() if r[0]][0][4]
    c = await h.connect(port, "mallory (replaying)", key=mallory.key)
    fence = "fence %s" % random_id()
    fdoc = chat_doc(mallory.id, "mallory", 1, fence, **(
        {"epoch": 1, "sig": mallory.key.sign_line(mallory.id, 1, 1, fence)} if h.secure else {}))
    await c.send(frame("peer-hello", '<peer-hello id="%s" name="mallory"/>' % mallory.id) +
                 frame("chat", payload) + frame("chat", fdoc))
    which, _ = await first_of(shown=alice.wait_for_line(r"^mallory: %s$" % fence, DELIVERY),
                              closed=c.wait_closed_by_peer(DELIVERY))
    h.check(which is not None, "alice read mallory's connection (%s)" % which)
    n = sum(1 for name, t in alice.chat_lines() if t == L)
    h.check_eq(n, 1, "alice shows L exactly once")
    c.close()
    mallory.stop()


if __name__ == "__main__":
    main(test, "attack_replay_window", budget=140)
