"""complainers: servants that complain on purpose, for the loopback relay tests.

A Liar is a harness.RawServant: it registers as a servant that relays for nobody
(max-clients 0), listens on the port it announces (TLS with its own key, once the programs
hold keys: in open mode any key may join), heartbeats, and complains about one servant five
times a second. Enough of them make a quorum, which is how a test gets a servant judged
unreachable and relayed on loopback, where every servant is in fact reachable.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import RawServant  # noqa: E402


class Liar(RawServant):
    """A fake servant speaking the real protocol that complains about `target` five times a
    second once started."""

    def __init__(self, h, name, manager, secret=None, local_host=None):
        super().__init__(h, name, max_clients=0)
        self.manager, self.secret, self.local_host = manager, secret, local_host

    @property
    def sent(self):
        return self.sent_complaints

    async def start_lying(self, target_id):
        await self.register(self.manager, self.secret, self.local_host)
        self.start()
        self.complain(target_id)


async def servant_id(h, manager, name):
    root = await h.status(manager)
    for s in root.iter("servant"):
        if s.get("name") == name:
            return s
    h.check(False, "%s is in the manager's status" % name)


async def get_relayed(h, m, target, liars=3, local_host=None):
    """Has `liars` Liars complain about the servant process `target` until the manager
    judges it and assigns a relay, and target pulls from it. Returns (liars, the relay's
    status entry). With three liars and two honest servants besides target the liars are
    a quorum (3 of 5 others: the quorum is half the others, plus one)."""
    tid = (await servant_id(h, m, target.name)).get("id")
    started = []
    for i in range(liars):
        liar = Liar(h, "liar%d" % (i + 1), m, local_host=local_host)
        await liar.start_lying(tid)
        started.append(liar)
    await h.expect(m.wait_log(r"verdict: %s \(%s\) is suspicious" % (target.name, tid), 20),
                   "the liars' quorum gets %s judged" % target.name)
    hit = await h.expect(m.wait_log(r"relay: %s pulls from \S+ (\S+) " % target.name, 5),
                         "%s is assigned a relay" % target.name)
    await h.expect(target.wait_log(r"pulling from relay %s" % hit.group(1), 10),
                   "%s pulls from %s" % (target.name, hit.group(1)))
    return started, await servant_id(h, m, hit.group(1))
