#!/usr/bin/env python3
"""Bans: a servant whose config bans another's address never shows that servant's lines.

  who     runs where          config                          must see
  alice   127.0.0.1           <bans><ban><target>127.0.0.2    bob's and carol's lines; never
                              </target></ban></bans>          eve's; logs eve refused
  bob     127.0.0.1           no bans                         everyone's lines, eve's too
  carol   127.0.0.1           --ban 127.0.0.9 (someone else)  everyone's lines, eve's too
  eve     --listen 127.0.0.2  no bans                         (talks to the manager and
                                                              peers from 127.0.0.2)
"""
import re

import harness
from harness import main


async def test(h):
    m = await h.start_manager()
    alice = await h.start_servant("alice", m, bans=["127.0.0.2"])
    bob = await h.start_servant("bob", m)
    carol = await h.start_servant("carol", m, extra=["--ban", "127.0.0.9"])
    eve = await h.start_servant("eve", m, listen="127.0.0.2")
    everyone = [alice, bob, carol, eve]
    await h.wait_peer_count(everyone, 4)

    # The manager sees eve at the address she listens on.
    await h.expect(m.wait_log(r"joined: eve\b.*127\.0\.0\.2"), "manager sees eve at 127.0.0.2")
    rows = await alice.peers()
    eve_row = [r for r in rows if r[1] == "eve"]
    h.check(eve_row and eve_row[0][3] == "127.0.0.2", "alice lists eve at 127.0.0.2")
    h.check(eve_row and "banned" in eve_row[0][5], "alice's /peers marks eve banned", fatal=False)

    # Eve talks. Everybody but alice shows it.
    _, eve_lines1 = await h.chat_round([eve], [bob, carol, eve], "eve speaks")
    # Alice refused eve's connection (eve dials every peer it lists).
    await h.expect(alice.wait_log(r"refused connection from 127\.0\.0\.2\b.*banned"),
                   "alice refused a connection from 127.0.0.2 as banned")
    # The others talk: alice shows their lines (so she is listening, just not to eve).
    _, others = await h.chat_round([alice, bob, carol], everyone, "others speak")
    h.check_exactly_once([bob, carol, eve], others, "others speak")
    # Eve again, and a last round from bob and carol after it: by the time their lines have
    # reached alice, eve's would have too had they not been refused.
    _, eve_lines2 = await h.chat_round([eve], [bob, carol, eve], "eve again")
    _, last = await h.chat_round([bob, carol], everyone, "last")
    shown = alice.chat_lines()
    from_eve = [t for name, t in shown if name == "eve"]
    h.check(not from_eve, "alice never showed a line from eve (%d shown)" % len(from_eve))
    for txt in list(eve_lines1.values()) + list(eve_lines2.values()):
        h.check(all(t != txt for _, t in shown), "alice never showed %r, under any name" % txt)
    h.check_exactly_once([bob, carol], {**eve_lines1, **eve_lines2}, "eve's lines elsewhere")
    h.check_exactly_once([alice, bob, carol, eve], last, "last")


if __name__ == "__main__":
    main(test, "ban", budget=60)
