#!/usr/bin/env python3
"""Attack (issue 9): a banned address's lines are shown when they arrive through a relay
under another origin.

A ban was checked against the address of the connection a line came in on, and (since the
structure issue) against the listed address of the line's origin. A relayed servant receives
everything from its relay: a banned party that relays for it can hand it lines under any
origin it likes. Now every line is verified with its origin's key whatever path it took, and
a ban applies to the verified origin (its key, and its listed address).

Two overlays, each with its own manager; in both alice bans 127.0.0.2 in her config and is
relayed, four liars complaining about her until she is judged (quorum 4 of 7 others).

  part  who                  runs where     does                                must see
  A     mallory              127.0.0.2      registered with her own key (open   alice shows none of
                                            mode), relays for up to 8: the only  the lines mallory
                                            candidate (bob, carol relay for     sends her, under
                                            nobody); answers alice's pull with  bob's origin or her
                                            lines "from bob" and lines of her   own
                                            own, all signed with her key
        alice, bob, carol    127.0.0.1      bob and carol talk                  alice: only theirs
  B     eve                  127.0.0.2      a real servant; relays for nobody;  alice never shows
                                            types lines                          eve's lines
        alice, bob, carol    127.0.0.1      alice pulls from bob or carol       bob and carol show
                                                                                eve's lines

Today's main (b96444a) passes part B: the structure issue made a ban apply to the origin's
listed address. It fails part A: alice pulls from mallory at the banned address and shows
"bob: <mallory's text>". Recorded on main at b96444a: "not ok 10 - A: alice never showed a
line mallory handed her (3 shown: [('bob-a', 'from the banned relay, as bob 1'), ('bob-a',
'from the banned relay, as bob 2'), ('bob-a', 'from the banned relay, as bob 3')])"; her own
lines were dropped (her listed address is banned).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import harness  # noqa: E402
from harness import MSG, RawServant, chat_doc, frame, main  # noqa: E402
from complainers import get_relayed  # noqa: E402

AS_BOB = "from the banned relay, as bob"
AS_HERSELF = "from the banned relay, as herself"


def no_relaying(h, name):
    return h.write_config(name, body='<?xml version="1.0"?>\n<config>\n  <relay-clients>0</relay-clients>\n'
                          '</config>\n')


def signed(h, key, origin, name, seq, text):
    if not h.secure:
        return chat_doc(origin, name, seq, text)
    return chat_doc(origin, name, seq, text, epoch=1, sig=key.sign_line(origin, 1, seq, text))


async def part_a(h):
    m = await h.start_manager(name="manager-a")
    alice = await h.start_servant("alice-a", m, bans=["127.0.0.2"])
    bob = await h.start_servant("bob-a", m, config=no_relaying(h, "bob-a"))
    carol = await h.start_servant("carol-a", m, config=no_relaying(h, "carol-a"))
    honest = [alice, bob, carol]
    await h.wait_peer_count(honest, 3)
    mallory = RawServant(h, "mallory", max_clients=8, host="127.0.0.2")

    async def on_conn(c):
        f = await c.read_frame(60)
        if f and f[0] == MSG["pull"]:
            data = b""
            for seq in range(1, 4):
                data += frame("chat", signed(h, mallory.key, bob.id, bob.name, 100 + seq, "%s %d" % (AS_BOB, seq)))
                data += frame("chat", signed(h, mallory.key, mallory.id, "mallory", seq, "%s %d" % (AS_HERSELF, seq)))
            await c.send(data)
        while f is not None:
            f = await c.read_frame(3600)

    mallory._on_peer = on_conn
    await mallory.register(m)
    mallory.start()
    liars, relay = await get_relayed(h, m, alice, liars=4)
    h.note("A: alice is relayed by %s" % relay.get("name"))
    # bob and carol talk: their lines reach alice through her relay (or not at all, if
    # that relay is mallory; the check on mallory's lines comes first).
    try:
        await h.chat_round([bob, carol], honest, "A: bob and carol")
    except harness.CheckFailed:
        pass
    got = [(n, t) for n, t in alice.chat_lines() if t.startswith((AS_BOB, AS_HERSELF))]
    h.check(not got, "A: alice never showed a line mallory handed her (%d shown%s)" %
            (len(got), ": %s" % got if got else ""), fatal=False)
    for l in liars:
        l.stop()
    mallory.stop()
    return not got


async def part_b(h):
    m = await h.start_manager(name="manager-b")
    alice = await h.start_servant("alice", m, bans=["127.0.0.2"])
    bob = await h.start_servant("bob", m)
    carol = await h.start_servant("carol", m)
    eve = await h.start_servant("eve", m, listen="127.0.0.2", config=no_relaying(h, "eve"))
    everyone = [alice, bob, carol, eve]
    await h.wait_peer_count(everyone, 4)
    liars, relay = await get_relayed(h, m, alice, liars=4)
    h.check(relay.get("name") in ("bob", "carol"), "B: alice is relayed by bob or carol (%s)" % relay.get("name"))

    _, eve_lines = await h.chat_round([eve], [bob, carol, eve], "B: eve speaks")
    _, others = await h.chat_round([bob, carol], everyone, "B: others speak")
    _, eve_again = await h.chat_round([eve], [bob, carol, eve], "B: eve again")
    # A last round through the same relay after eve's: had eve's lines been forwarded and
    # shown, they would be on alice's screen by now.
    _, last = await h.chat_round([bob, carol], everyone, "B: last")
    texts = list(eve_lines.values()) + list(eve_again.values())
    got = [(n, t) for n, t in alice.chat_lines() if t in texts or n == "eve"]
    h.check(not got, "B: alice never showed a line of eve's (%d shown%s)" % (len(got), ": %s" % got if got else ""),
            fatal=False)
    h.check_exactly_once([bob, carol], {**eve_lines, **eve_again}, "B: eve's lines elsewhere")
    h.check_exactly_once(everyone, others, "B: others speak")
    h.check_exactly_once(everyone, last, "B: last")
    for l in liars:
        l.stop()
    return not got


async def test(h):
    a = await part_a(h)
    b = await part_b(h)
    h.check(a and b, "no line from the banned address was shown, whatever path it took")


if __name__ == "__main__":
    main(test, "attack_ban_via_relay", budget=120)
