#!/usr/bin/env python3
"""Complaints need a quorum: one lying servant that complains about a reachable peer over
and over never gets it marked suspicious; the manager counts at most one complaint per
heartbeat interval from it. As a control, once enough reporters complain the verdict
does come, a relay is assigned, and the judged servant pulls from it and still gets
every line exactly once."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from complainers import Liar, servant_id  # noqa: E402


async def test(h):
    m = await h.start_manager()
    names = ["alice", "bob", "carol"]
    sv = {n: await h.start_servant(n, m) for n in names}
    await h.wait_peer_count(list(sv.values()), 3)
    alice = await servant_id(h, m, "alice")
    aid = alice.get("id")

    # One liar. Others of alice: bob, carol, liar1 -> quorum 2; the liar alone is 1.
    liars = [Liar(h, "liar1", m)]
    await liars[0].start_lying(aid)
    t0 = asyncio.get_running_loop().time()
    await h.expect(m.wait_log(r"complaint: liar1 cannot reach alice \(3 of 3 from it", 15),
                   "the manager counted the liar's complaints up to the threshold")
    # Let it go on for three more heartbeat intervals past the threshold.
    await h.expect(m.wait_log(r"complaint: liar1 cannot reach alice \(6 of 3 from it", 15),
                   "the liar keeps complaining past the threshold")
    elapsed = asyncio.get_running_loop().time() - t0
    counted = len(m.find(r"complaint: liar1 cannot reach alice", "stderr"))
    h.check(liars[0].sent >= 3 * counted,
            "rate limit: the liar sent %d complaints, %d counted (at most one per heartbeat)"
            % (liars[0].sent, counted))
    h.check(counted <= elapsed / (harness.HEARTBEAT * 0.9) + 1,
            "no more than one counted complaint per heartbeat interval (%d in %.1fs)" % (counted, elapsed))
    h.check(not m.find(r"verdict: alice", "stderr"), "one liar alone never gets alice judged")
    st = await servant_id(h, m, "alice")
    h.check_eq(st.get("state"), "direct", "alice's state in natmesh-ctl status")

    # Control: two more reporters make a quorum (others of alice: bob, carol, 3 liars -> 3).
    for n in ("liar2", "liar3"):
        l = Liar(h, n, m)
        await l.start_lying(aid)
        liars.append(l)
    await h.expect(m.wait_log(r"verdict: alice \([0-9a-f]+\) is suspicious: 3 reporters", 20),
                   "with a quorum of reporters the verdict comes")
    hit = await h.expect(m.wait_log(r"relay: alice pulls from servant (bob|carol)", 5),
                         "a non-suspicious servant is assigned as alice's relay")
    relay_name = hit.group(1)
    await h.expect(sv["alice"].wait_log(r"pulling from relay %s" % relay_name, 10),
                   "alice pulls from her relay")
    st = await servant_id(h, m, "alice")
    h.check_eq((st.get("state"), st.get("relay-name")), ("relayed", relay_name),
               "natmesh-ctl status shows alice relayed by her relay")
    lines = {}
    _, lines = await h.chat_round([sv["bob"], sv["carol"]], list(sv.values()), "after-verdict")
    # bob and carol stop publishing to alice directly once she is relayed: her copy comes
    # through the relay, and exactly once.
    h.check_exactly_once(list(sv.values()), lines, "relayed chat")
    for l in liars:
        l.stop()


if __name__ == "__main__":
    harness.main(test, "complaint_quorum", budget=120)
