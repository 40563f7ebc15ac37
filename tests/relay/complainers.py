"""complainers: servants that complain on purpose, for the loopback relay tests.

Liar speaks the real protocol over a raw connection (harness.RawPeer): it registers as a
servant that relays for nobody (max-clients 0; it even listens on the port it announces),
heartbeats, and complains about one servant five times a second. Enough of them make a
quorum, which is how a test gets a servant judged unreachable and relayed on loopback,
where every servant is in fact reachable.
"""
import asyncio
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import RawPeer, random_id  # noqa: E402


class Liar:
    """A fake servant speaking the real protocol: registers honestly (it even listens on
    the port it announces, and says it relays for nobody: max-clients 0), heartbeats, and
    complains about `target` five times a second."""

    def __init__(self, h, name, manager_port):
        self.h, self.name, self.mport = h, name, manager_port
        self.id = random_id()
        self.sent = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.tasks = []

    async def start(self, target_id):
        self.peer = await RawPeer.connect("127.0.0.1", self.mport, self.name)
        await self.peer.send_frame("hello", '<hello id="%s" name="%s" role="servant" port="%d" max-clients="0"/>'
                                   % (self.id, self.name, self.port))
        t, p = await self.peer.read_frame()
        assert t == harness.MSG["welcome"], (t, p)
        await self.peer.send_frame("listening", '<listening port="%d"/>' % self.port)
        self.tasks = [asyncio.ensure_future(self._drain()), asyncio.ensure_future(self._beat()),
                      asyncio.ensure_future(self._complain(target_id))]

    async def _drain(self):
        while await self.peer.read_frame(3600) is not None:
            pass

    async def _beat(self):
        while True:
            await self.peer.send_frame("heartbeat", '<heartbeat version="0"/>')
            await asyncio.sleep(harness.HEARTBEAT * 0.5)

    async def _complain(self, target_id):
        while True:
            await self.peer.send_frame("complaint", '<complaint accused="%s" reason="refused"/>' % target_id)
            self.sent += 1
            await asyncio.sleep(0.2)

    def stop(self):
        for t in self.tasks:
            t.cancel()
        self.peer.close()
        self.listener.close()


async def servant_id(h, manager, name):
    root = await h.status(manager)
    for s in root.iter("servant"):
        if s.get("name") == name:
            return s
    h.check(False, "%s is in the manager's status" % name)


async def get_relayed(h, m, target, liars=3):
    """Has `liars` Liars complain about the servant process `target` until the manager
    judges it and assigns a relay, and target pulls from it. Returns (liars, the relay's
    status entry). With three liars and two honest servants besides target the liars are
    a quorum (3 of 5 others)."""
    tid = (await servant_id(h, m, target.name)).get("id")
    started = []
    for i in range(liars):
        liar = Liar(h, "liar%d" % (i + 1), m.info["port"])
        await liar.start(tid)
        started.append(liar)
    await h.expect(m.wait_log(r"verdict: %s \(%s\) is suspicious" % (target.name, tid), 20),
                   "the liars' quorum gets %s judged" % target.name)
    hit = await h.expect(m.wait_log(r"relay: %s pulls from \S+ (\S+) " % target.name, 5),
                         "%s is assigned a relay" % target.name)
    await h.expect(target.wait_log(r"pulling from relay %s" % hit.group(1), 10),
                   "%s pulls from %s" % (target.name, hit.group(1)))
    return started, await servant_id(h, m, hit.group(1))
