#!/usr/bin/env python3
"""A servant given an invite for manager A but pointed (--manager) at manager B refuses B,
says why, and never registers there (issue 9, "what it must show" 3).

An invite carries the manager's address and the fingerprint of its key; --manager and
--manager-port move the address, never the key. B admits any key (--open), so only the
servant's pinning stands between it and B.

  who      runs where                           must see
  A        127.0.0.1:PA, --admission invite     bob registers (the invite works)
  B        127.0.0.1:PB, --open                 no hello from alice, never "joined: alice";
                                                natmesh-ctl status of B lists no alice; alice
                                                connects again (twice) and is refused again
  alice    --invite (A's) --manager-port PB     logs that the manager at PB presented B's key
                                                while the invite names A's, and refuses it;
                                                never "registered as alice"
  bob      --invite (A's)                       registers with A

Needs the programs of issue 9 (invites); skipped before them.
"""
import re

import harness
from harness import DELIVERY, STARTUP, Skip, main


async def test(h):
    if not h.secure:
        raise Skip("invites came with issue 9")
    a = await h.start_manager(name="manager-a", admission="invite")
    b = await h.start_manager(name="manager-b", admission="open")
    invite = await h.invite(a)
    h.check(a.info["fp"] in invite and str(a.info["port"]) in invite, "the invite names A's address and key")

    bsince = b.mark("stderr")
    alice = await h.start_servant("alice", b, invite=invite, wait_registered=False)
    hit = await h.expect(alice.wait_log(r"manager at 127\.0\.0\.1:%d presented key %s, but the invite names %s"
                                        r".*refusing" % (b.info["port"], b.info["fp"], a.info["fp"]), STARTUP),
                         "alice refuses B, naming B's key and the invite's")
    h.note("alice: %s" % hit.line.text)
    # She tries again (with backoff) and is refused again: B sees connections, never a hello.
    conns = 0
    for _ in range(3):
        hit = await b.wait_log(r"connection from 127\.0\.0\.1:\d+|connections: \d+ more", STARTUP, bsince)
        bsince = hit.index + 1
        conns += 1
    h.check(conns >= 3, "alice connected to B three times")
    h.check(not b.find(r"hello from alice|joined: alice", "stderr"), "B never heard alice's hello")
    h.check(not alice.find(r"registered as alice\b", "stderr"), "alice never registered")
    st = await h.status(b)
    h.check_eq([s.get("name") for s in st.findall("servant")], [], "natmesh-ctl status of B lists no servant")

    # The invite itself is good: bob, not redirected, joins A with it.
    bob = await h.start_servant("bob", a, invite=invite)
    st = await h.status(a)
    h.check_eq([s.get("name") for s in st.findall("servant")], ["bob"], "A lists bob, who came with the same invite")
    h.check(alice.alive, "alice still runs (she keeps refusing B)")


if __name__ == "__main__":
    main(test, "invite_other_manager", budget=60)
