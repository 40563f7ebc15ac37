#!/usr/bin/env python3
"""A relay that alters or forges lines is caught, and the lines are not shown (issue 9,
"what it must show" 4): a relayed servant shows only lines whose signatures verify with
their origin's listed key, whatever its relay hands it.

The relay is played by the test: a Python relay with a key of its own that the manager
grants the relay role (--relay-key), so the manager prefers it (a dedicated relay) when alice
has to be relayed. Like any relay it is listed, so bob publishes his lines to it; it keeps
them, signatures and all. When alice pulls from it, it hands her:

  what                                                   must see (alice)
  G1  bob's line, exactly as bob signed it               shown once (she had it already:
                                                         a duplicate is not shown again)
  A2  bob's second line with its text altered            not shown; dropped, said
  F   a line "from bob" the relay signed with its key    not shown; dropped, said
  S3  bob's third line with its seq changed (sig kept)   not shown; dropped, said
  X   G1's signature on another text                     not shown; dropped, said
  G4  bob's next line (typed once alice pulls), as he    shown exactly once
      signed it

Before issue 9 (no signatures; relays declared themselves) this fails: alice shows what the
relay made up. Recorded on main at b96444a: "not ok 18 - alice never showed F forged", "not
ok 19 - alice never showed S3 G3", "not ok 20 - alice never showed X swapped" (A2 kept G2's
seq, so the old de-duplication hid it).
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import harness  # noqa: E402
from harness import DELIVERY, MSG, RawServant, chat_doc, frame, main, random_id  # noqa: E402
from complainers import get_relayed  # noqa: E402

BAD = 4  # A2, F, S3, X


def parse_chat(payload):
    """(origin, epoch, seq, sig, text) of a chat payload (text unescaped)."""
    root = ET.fromstring(payload)
    return root.get("origin"), root.get("epoch"), root.get("seq"), root.get("sig"), root.text or ""


async def test(h):
    relay_key = h.new_key("fakerelay")
    m = await h.start_manager(relay_keys=[relay_key.fp] if h.secure else ())
    sv = {n: await h.start_servant(n, m) for n in ("alice", "bob", "carol")}
    alice, bob = sv["alice"], sv["bob"]
    await h.wait_peer_count(list(sv.values()), 3)

    pulls = []
    relay = RawServant(h, "fakerelay", key=relay_key, role="relay", max_clients=8)

    async def on_conn(c):
        f = await c.read_frame(60)
        if f and f[0] == MSG["pull"]:
            pulls.append(c)
            await c.send(b"".join(frame("chat", doc) for doc in bad_lines))
            # Whatever bob publishes from now on goes to alice as he signed it.
            sent = len(relay.inbox)
            while True:
                await relay.wait_inbox(lambda *_: len(relay.inbox) > sent, 3600)
                for _, t, p in relay.inbox[sent:]:
                    if t == MSG["chat"]:
                        await c.send(frame("chat", p))
                sent = len(relay.inbox)
        if f and f[0] != MSG["pull"]:
            relay.inbox.append((c, f[0], f[1]))
            relay._wake()
        while f is not None:
            f = await c.read_frame(3600)
            if f:
                relay.inbox.append((c, f[0], f[1]))
                relay._wake()

    relay._on_peer = on_conn
    await relay.register(m)
    relay.start()
    await h.expect(bob.wait_log(r"peer joined: fakerelay"), "bob lists the relay")

    # bob's lines G1..G3, which the relay receives as any peer does.
    tag = random_id()
    g = {}
    for i in (1, 2, 3):
        g[i] = "G%d %s" % (i, tag)
        await bob.send(g[i])
    await h.wait_all([alice.wait_for_line(r"^bob: %s$" % g[i]) for i in (1, 2, 3)], "alice shows G1-G3 (directly)")
    got = {}
    for i in (1, 2, 3):
        _, _, p = await h.expect(relay.wait_inbox(lambda c, t, p, i=i: t == MSG["chat"] and g[i].encode() in p),
                                 "the relay received G%d from bob" % i)
        got[i] = p

    bad_lines = [got[1]]  # G1 verbatim
    o, e, s, sig, text = parse_chat(got[2])
    alt = {"epoch": e, "sig": sig} if h.secure else {}
    bad_lines.append(chat_doc(o, "bob", s, "A2 altered %s" % tag, **alt))
    fs = int(s) + 100
    forged = "F forged %s" % tag
    bad_lines.append(chat_doc(o, "bob", fs, forged, **({"epoch": e, "sig": relay_key.sign_line(o, int(e), fs, forged)}
                                                       if h.secure else {})))
    o3, e3, s3, sig3, text3 = parse_chat(got[3])
    bad_lines.append(chat_doc(o3, "bob", int(s3) + 50, "S3 " + text3, **({"epoch": e3, "sig": sig3} if h.secure else {})))
    o1, e1, s1, sig1, text1 = parse_chat(got[1])
    bad_lines.append(chat_doc(o1, "bob", int(s1) + 60, "X swapped %s" % tag, **({"epoch": e1, "sig": sig1}
                                                                             if h.secure else {})))

    since = alice.mark("stderr")
    liars, chosen = await get_relayed(h, m, alice, liars=4)
    h.check_eq(chosen.get("name"), "fakerelay", "alice is relayed by the granted relay")
    h.check(len(pulls) == 1, "alice pulled from it")
    if h.secure:
        hits = []
        for _ in range(BAD):
            hit = await alice.wait_log(r"dropped a line via relay fakerelay claiming to be from bob.*"
                                       r"signature does not verify", DELIVERY, since)
            hits.append(hit)
            since = hit.index + 1
        h.check(True, "alice caught the %d altered or forged lines: %s" % (BAD, hits[0].line.text))

    g4 = "G4 %s" % tag
    await bob.send(g4)
    await h.expect(alice.wait_for_line(r"^bob: %s$" % g4), "alice shows G4")
    shown = [t for n, t in alice.chat_lines()]
    for what in ("A2 altered", "F forged", "S3 G3", "X swapped"):
        h.check(not any(t.startswith(what) for t in shown), "alice never showed %s" % what, fatal=False)
    for i in (1, 2, 3):
        h.check_eq(shown.count(g[i]), 1, "alice shows G%d exactly once" % i)
    h.check_eq(shown.count(g4), 1, "alice shows G4 exactly once")
    h.check(not any(re.match(r"(A2 altered|F forged|S3 G3|X swapped)", t) for t in shown),
            "no altered or forged line was shown")
    for l in liars:
        l.stop()
    relay.stop()


if __name__ == "__main__":
    main(test, "attack_relay_forgery", budget=90)
