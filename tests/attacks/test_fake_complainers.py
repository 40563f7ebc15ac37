#!/usr/bin/env python3
"""Attack (issue 9): six fake registrations from one process get a reachable servant judged
suspicious.

Before issue 9 anyone could register any number of servants (random ids), and a quorum of
them complaining about alice got her judged unreachable and relayed in seconds. Now the
manager admits keys (invite mode by default: a join secret per invite), complaints count per
admitted key, and a lone reporter cannot convict.

  who       does                                                  must see
  manager   --admission invite (the default of issue 9)           never "verdict: alice"
  alice,    servants, each joined with an invite of its own       alice stays direct
  bob,
  carol
  mallory   holds one invite (--uses 1) for her own key; opens    her first session is
            six sessions, complaining 5 times a second about      admitted; the five fresh
            alice on each that is admitted:                       keys are refused, with or
              1   her own key with the invite's secret            without the spent secret
              2-6 five fresh keys, with the same secret
            (before issue 9: six random ids)

The test waits until mallory's admitted session has had six complaints counted (six
heartbeats: twice what the verdict needs), then checks no verdict came.

Before issue 9 this fails: the six registrations are a quorum (others of alice: bob, carol
and six fakes, quorum 5) and alice is judged within two seconds. Recorded on main at b96444a:
"not ok 6 - at most mallory's one invited key is admitted (6 of 6)", "not ok 8 - alice was
never judged suspicious (verdict: alice (4b073cd31180cf85) is suspicious: 5 reporters with 3+
complaints each, quorum 5, ...)", "not ok 9 - alice's state in natmesh-ctl status: got
['relayed'], expected ['direct']".
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, MSG, RawServant, main  # noqa: E402

FAKES = 6


async def test(h):
    m = await h.start_manager(admission="invite")
    servants = [await h.start_servant(n, m) for n in ("alice", "bob", "carol")]
    alice = servants[0]
    await h.wait_peer_count(servants, 3)
    secret = None
    if h.secure:
        invite = await h.invite(m, extra=["--uses", "1"])
        secret = invite.split("/")[4]
    admitted, refused = [], []
    for i in range(1, FAKES + 1):
        # mallory1 holds the invite's key; the others are fresh keys of hers.
        fake = RawServant(h, "mallory%d" % i, key=h.new_key("mallory%d" % i) if h.secure else None, max_clients=0)
        f = await fake.hello(m, secret=secret)
        if f is not None and f[0] == MSG["welcome"]:
            await fake.listening()
            fake.start()
            fake.complain(alice.id)
            admitted.append(fake)
        else:
            refused.append((fake, f[1].decode("utf-8", "replace") if f and f[0] == MSG["error"] else "closed"))
            fake.stop()
    h.note("admitted: %s; refused: %s" % ([f.name for f in admitted], [(f.name, why) for f, why in refused]))
    h.check(len(admitted) <= 1, "at most mallory's one invited key is admitted (%d of %d)" % (len(admitted), FAKES),
            fatal=False)
    if admitted:
        first = admitted[0]
        # Six counted complaints (one per heartbeat) from the first admitted session, or a
        # verdict, whichever comes first.
        await h.expect(m.wait_log(r"complaint: %s cannot reach alice \(6 of|verdict: alice" % first.name, 20),
                       "the manager counted six heartbeats' worth of complaints from %s" % first.name)
    verdicts = m.find(r"verdict: alice .*", "stderr")
    h.check(not verdicts, "alice was never judged suspicious%s" % (" (%s)" % verdicts[0].group(0) if verdicts else ""),
            fatal=False)
    st = await h.status(m)
    state = [s.get("state") for s in st.findall("servant") if s.get("name") == "alice"]
    h.check_eq(state, ["direct"], "alice's state in natmesh-ctl status")
    for f in admitted:
        f.stop()


if __name__ == "__main__":
    main(test, "attack_fake_complainers", budget=90)
