#!/usr/bin/env python3
"""Attack (issue 9): a self-declared role="relay" is preferred as a relay, receives the
victim's token and feeds it forged lines.

Before issue 9 any hello could say role="relay"; the manager preferred such "dedicated
relays" when a servant had to be relayed, sent it relay-serve with the victim's token, and
the victim pulled from it and showed whatever it sent. Now the relay role is granted by the
manager (invite, allow list or --relay-key), and every line is verified with its origin's
key, whatever path it took.

  who        does                                                   must see
  manager    --open                                                 refuses mallory's relay hello
                                                                    ("the relay role is not
                                                                    granted to this key")
  alice      servant (the victim)                                   no forged line; if mallory
                                                                    relays her (as the servant
                                                                    she may be), alice logs her
                                                                    forged lines as dropped (bad
                                                                    signature); bob's and
                                                                    carol's lines exactly once
  bob, carol servants
  mallory    hello role="relay" max-clients 8 with her own key;     -
             refused, she joins as a servant offering to relay (as
             bob and carol do); answers any pull with lines "from
             bob" (signed with her own key)
  liar1..4   complain about alice until she is judged (a quorum:
             others of alice are bob, carol, mallory, four liars:
             quorum 4)

Before issue 9 this fails: the manager assigns mallory (a dedicated relay comes first),
alice pulls from her and shows "bob: <forged>". Recorded on main at b96444a: "not ok 9 -
alice is not relayed by mallory (relay: mallory)", "not ok 10 - mallory never received
alice's pull (1)", "not ok 12 - alice never showed a forged line: [('bob', 'forged through
the self-declared relay 1'), ...]" (and bob's real lines never reached alice: not ok 11).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import harness  # noqa: E402
from harness import MSG, RawServant, chat_doc, frame, main  # noqa: E402
from complainers import get_relayed  # noqa: E402

FORGED = "forged through the self-declared relay"


async def test(h):
    m = await h.start_manager()
    sv = {n: await h.start_servant(n, m) for n in ("alice", "bob", "carol")}
    alice, bob = sv["alice"], sv["bob"]
    await h.wait_peer_count(list(sv.values()), 3)
    pulls = []

    mallory = RawServant(h, "mallory", role="relay", max_clients=8)

    async def on_conn(c):
        f = await c.read_frame(60)
        if f and f[0] == MSG["pull"]:
            pulls.append(f[1])
            data = b""
            for seq in range(1, 4):
                text = "%s %d" % (FORGED, seq)
                if h.secure:
                    doc = chat_doc(bob.id, "bob", seq, text, epoch=1,
                                   sig=mallory.key.sign_line(bob.id, 1, seq, text))
                else:
                    doc = chat_doc(bob.id, "bob", seq, text)
                data += frame("chat", doc)
            await c.send(data)
        while f is not None:
            f = await c.read_frame(3600)

    mallory._on_peer = on_conn
    f = await mallory.hello(m)
    declared = f is not None and f[0] == MSG["welcome"]
    if declared:
        h.note("the manager welcomed mallory's hello with role=relay")
        await mallory.listening()
        mallory.start()
    else:
        why = f[1].decode("utf-8", "replace") if f and f[0] == MSG["error"] else "closed"
        h.note("the manager refused mallory's relay hello: %s" % why)
        # She joins as what anyone may be: a servant that offers to relay for others, like
        # bob and carol. Chosen or not, she can drop lines but not forge them.
        mallory.stop()
        mallory = RawServant(h, "mallory", key=mallory.key, max_clients=8)
        mallory._on_peer = on_conn
        await mallory.register(m)
        mallory.start()
    h.check(not declared, "the manager refuses a relay role mallory was not granted (%s)" %
            ("welcomed" if declared else why), fatal=False)

    liars, relay = await get_relayed(h, m, alice, liars=4)
    if declared:
        h.check(relay.get("name") != "mallory", "alice is not relayed by the self-declared relay mallory (relay: %s)"
                % relay.get("name"), fatal=False)
    elif relay.get("name") == "mallory":
        # Picked as an ordinary servant: she answers the pull with her forgeries.
        await h.expect(alice.wait_log(r"dropped a line via relay mallory claiming to be from bob.*signature does "
                                      r"not verify"), "alice catches mallory's forged lines (bad signature)")
    h.note("alice is relayed by %s; mallory received %d pulls" % (relay.get("name"), len(pulls)))
    try:
        _, lines = await h.chat_round([bob, sv["carol"]], list(sv.values()), "relayed chat")
    except harness.CheckFailed:
        lines = None  # recorded; the forged lines are checked all the same
    forged = [(n, t) for n, t in alice.chat_lines() if t.startswith(FORGED)]
    h.check(not forged, "alice never showed a forged line%s" % (": %s" % forged if forged else ""))
    h.check(lines is not None, "bob's and carol's lines reached alice through her relay")
    h.check_exactly_once(list(sv.values()), lines, "relayed chat")
    for l in liars:
        l.stop()
    mallory.stop()


if __name__ == "__main__":
    main(test, "attack_self_declared_relay", budget=90)
