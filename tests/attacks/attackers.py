"""attackers: what more than one attack test does, on top of harness.py.

Flood keeps n connections open to a target from one address, as an attacker exhausting the
target's sessions would: each connection is opened (TLS with the attacker's key when asked),
says its greeting (nothing at all, or a peer-hello) and then stays idle. When the target
closes one it had held for a while (a timeout freed the slot), it is opened again at once
(after `refill` seconds), to take the slot back before anyone else can; one the target closed
at once (a cap refused it) is opened again after `reopen` seconds. So the pressure lasts for
as long as the flood runs, at a bounded rate.
"""
import asyncio
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import RawPeer  # noqa: E402


class Flood:
    def __init__(self, h, port, n, local_host="127.0.0.3", key=None, greeting=b"", reopen=2.0,
                 refill=0.05):
        self.h, self.port, self.n = h, port, n
        self.local_host, self.key, self.greeting = local_host, key, greeting
        self.reopen, self.refill = reopen, refill
        self.open = 0          # connections open right now (as far as we know)
        self.opened = 0        # connections opened in all
        self.failed = 0        # connects or handshakes that failed
        self.closed = 0        # connections the target closed
        self._attempted = 0
        self._first_round = asyncio.Event()
        self._tasks = []

    async def _slot(self, i):
        first = True
        while True:
            c = None
            try:
                if self.key is not None and self.h.secure:
                    c = await self.h.connect(self.port, "flood%d" % i, key=self.key,
                                             local_host=self.local_host, timeout=10)
                else:
                    c = await RawPeer.connect("127.0.0.1", self.port, "flood%d" % i, self.local_host, 10)
                if self.greeting:
                    await c.send(self.greeting)
                self.opened += 1
                self.open += 1
            except (OSError, ConnectionError, asyncio.TimeoutError):
                self.failed += 1
                c = None
            if first:
                first = False
                self._attempted += 1
                if self._attempted == self.n:
                    self._first_round.set()
            held = 0.0
            if c is not None:
                t0 = time.monotonic()
                try:
                    await c.wait_closed_by_peer(3600)
                finally:
                    c.close()
                held = time.monotonic() - t0
                self.open -= 1
                self.closed += 1
            await asyncio.sleep(self.refill if held >= 1.0 else self.reopen)

    async def start(self, batch=64):
        """Opens the n connections, batch at a time; returns (seconds taken, open)."""
        t0 = time.monotonic()
        for i in range(self.n):
            self._tasks.append(asyncio.ensure_future(self._slot(i)))
            if i % batch == batch - 1:
                await asyncio.sleep(0)
                while self._attempted < i + 1 - batch:
                    await asyncio.sleep(0.01)
        await asyncio.wait_for(self._first_round.wait(), 120)
        return time.monotonic() - t0, self.open

    def describe(self):
        return "%d open now, %d opened in all, %d closed by the target, %d failed" % (
            self.open, self.opened, self.closed, self.failed)

    async def stop(self):
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        self._tasks = []
