"""store_fixture: Redis servers (and Sentinel) for the tests of several managers (issue 14).

Every server runs on 127.0.0.1 and a free port the harness picks (never 6379: a Debian
redis-server package runs the system's there), without persistence, its files in the test's
folder; readiness is awaited from its own log lines on stdout, never slept for. The harness
stops them with everything else at the end.

    r = RedisServer(h); await r.start(); r.url        -> "redis://127.0.0.1:PORT"
    await r.kill()                                     SIGKILL (the harness expects it)
    await r.start()                                    again, on the same port (empty)

    rs = RedisSentinel(h); await rs.start(); rs.url   -> "sentinel://IP:P1,IP:P2,IP:P3/natmesh"
    rs.primary, rs.replica: RedisServer; rs.sentinels: Process
"""

import asyncio
import os
import shutil
import signal

from harness import STARTUP, CheckFailed, Skip

READY_RX = r"Ready to accept connections"
SYNCED_RX = r"MASTER <-> REPLICA sync: Finished with success"


def _program(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not path:
        raise Skip("%s is not installed (scripts/setup.sh installs it)" % name)
    return path


class RedisServer:
    """One redis-server on 127.0.0.1:port (default: a free port)."""

    def __init__(self, h, port=None, name="redis", extra=()):
        self.h, self.name, self.extra = h, name, list(extra)
        self.port = port or h.free_port()
        if self.port == 6379:
            raise ValueError("tests never use 6379 (the system's Redis)")
        self.dir = os.path.join(h.dir, name)
        self.proc = None
        self.runs = 0

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def args(self):
        return ["--port", self.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.dir, "--daemonize", "no", "--logfile", "",
                "--protected-mode", "no"] + self.extra

    async def start(self, timeout=STARTUP):
        os.makedirs(self.dir, exist_ok=True)
        self.runs += 1
        label = self.name if self.runs == 1 else "%s-%d" % (self.name, self.runs)
        self.proc = await self.h.spawn(label, _program("redis-server"), self.args())
        await self.proc.wait_for_line(READY_RX, timeout)
        return self

    async def cli(self, *args):
        """One command through redis-cli, its reply as text (CheckFailed when it fails)."""
        p = await asyncio.create_subprocess_exec("redis-cli", "-p", str(self.port), *[str(x) for x in args],
                                                 stdout=asyncio.subprocess.PIPE,
                                                 stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(p.communicate(), 10)
        if p.returncode != 0:
            raise CheckFailed("redis-cli %s: %s" % (" ".join(map(str, args)), err.decode()))
        return out.decode()

    async def kill(self):
        """SIGKILL: the way a primary dies in the failure tests."""
        self.proc.info["killed"] = True
        self.proc.signal(signal.SIGKILL)
        await self.proc.wait_exit()

    async def stop(self):
        if self.proc and self.proc.alive:
            await self.proc.stop()


class RedisSentinel:
    """A primary, one replica and three sentinels watching them (quorum 2,
    down-after-milliseconds 1000, failover-timeout 5000), all on 127.0.0.1."""

    def __init__(self, h, master="natmesh", nsentinels=3):
        self.h, self.master = h, master
        # no 5 s wait before the replica's first sync (Redis 7's diskless default)
        self.primary = RedisServer(h, name="redis-primary", extra=["--repl-diskless-sync-delay", "0"])
        self.replica = None
        self.nsentinels = nsentinels
        self.sentinel_ports = []
        self.sentinels = []

    @property
    def url(self):
        return "sentinel://%s/%s" % (",".join("127.0.0.1:%d" % p for p in self.sentinel_ports),
                                     self.master)

    def _config(self, i, port):
        path = os.path.join(self.h.dir, "sentinel-%d.conf" % i)
        with open(path, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"\"\n"
                    "dir %s\n" % (port, self.h.dir))
            f.write("sentinel monitor %s 127.0.0.1 %d 2\n" % (self.master, self.primary.port))
            f.write("sentinel down-after-milliseconds %s 1000\n" % self.master)
            f.write("sentinel failover-timeout %s 5000\n" % self.master)
            f.write("sentinel parallel-syncs %s 1\n" % self.master)
        return path

    async def start(self, timeout=STARTUP):
        sentinel = _program("redis-sentinel")
        await self.primary.start()
        self.replica = RedisServer(self.h, name="redis-replica",
                                   extra=["--replicaof", "127.0.0.1", str(self.primary.port)])
        await self.replica.start()
        await self.replica.proc.wait_for_line(SYNCED_RX, timeout)
        for i in range(self.nsentinels):
            port = self.h.free_port()
            self.sentinel_ports.append(port)
            p = await self.h.spawn("sentinel-%d" % i, sentinel, [self._config(i, port)])
            self.sentinels.append(p)
        for p in self.sentinels:
            await p.wait_for_line(r"\+monitor master %s " % self.master, timeout)
        # A failover needs a quorum of sentinels that know each other (they meet through the
        # primary's hello channel): wait until each has seen the others, and the replica.
        for p in self.sentinels:
            await self._wait_count(p, r"\+sentinel sentinel ", self.nsentinels - 1, timeout)
            await p.wait_for_line(r"\+slave slave ", timeout)
        return self

    async def _wait_count(self, p, pattern, n, timeout):
        since = 0
        for _ in range(n):
            hit = await p.wait_for_line(pattern, timeout, since=since)
            since = hit.index + 1

    async def wait_switch(self, timeout=30.0):
        """The sentinels agreed on a new primary: '+switch-master' from one of them."""
        hit = await self.sentinels[0].wait_for_line(r"\+switch-master %s " % self.master, timeout)
        return hit.line.text


async def start_managers(h, url, names=("a", "b"), extra=(), **kw):
    """Managers named names (processes mgr-NAME) sharing the store at url, each awaited until
    it read the store's snapshot. extra: more arguments for every manager (after --store and
    --manager-name); kw goes to h.start_manager."""
    ms = [await h.start_manager(name="mgr-" + n, extra=["--store", url, "--manager-name", n] + list(extra), **kw)
          for n in names]
    for m in ms:
        await h.expect(m.wait_log(r"store: overlay version \d+", 10), "%s read the store's snapshot" % m.name)
    return ms


async def four_servants(h, a, b, tag):
    """s1 and s2 registered with a, s3 and s4 with b; every one lists all four and a chat
    round reached everyone exactly once. Returns [s1, s2, s3, s4]."""
    four = [await h.start_servant(n, m) for n, m in (("s1", a), ("s2", a), ("s3", b), ("s4", b))]
    await h.wait_peer_count(four, 4)
    _, lines = await h.chat_round(four, four, tag)
    h.check_exactly_once(four, lines, tag)
    return four


def check_no_churn(h, servants, since, known, what):
    """None of servants printed, since since[s], a leave or a join of one of known (names),
    nor dropped a peer: the managers' outage, failover or reconciliation withdrew nothing
    the servants knew."""
    names = "|".join(known)
    for s in servants:
        churn = s.find(r"peer (left|joined): (%s)\b|dropped: not re-listed" % names, "stderr", since[s])
        h.check(not churn, "%s printed no leave and no join of a known peer %s (%s)" %
                (s.name, what, churn[0].group(0) if churn else "none"))
