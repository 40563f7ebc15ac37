#!/usr/bin/env python3
"""Type=notify: the daemons tell systemd how they are (sd_notify(3), src/nm_notify.c).

Each program runs with NOTIFY_SOCKET naming an AF_UNIX datagram socket this test listens
on, as systemd's would be; WATCHDOG_USEC=400000 asks for a ping at least every 0.4 s.

  who              must send, in this order
  natmesh-manager  READY=1 (after it logs "listening on"), STATUS="0 servants (...)";
                   WATCHDOG=1 again and again (at about half of 0.4 s);
                   once alice has joined: STATUS="1 servants (...)" and, with the
                   relay, "1 relay nodes";
                   on SIGTERM: STOPPING=1, then it exits 0
  natmesh-servant  READY=1 only once registered (after "registered as alice"), a STATUS
  (alice)          naming it; STOPPING=1 on SIGTERM
  natmesh-relay    READY=1 once registered, STATUS with its relay load; no WATCHDOG=1
                   (it runs without WATCHDOG_USEC); STOPPING=1
Without NOTIFY_SOCKET nm_notify does nothing: every other test runs the programs so (the
harness removes NOTIFY_SOCKET and WATCHDOG_* from their environment).
"""
import asyncio
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, STARTUP, CheckFailed, main  # noqa: E402

WATCHDOG_USEC = 400000


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket. Every datagram is kept with
    its arrival time; each holds newline-separated VAR=VALUE assignments."""

    def __init__(self, h, name):
        self.path = os.path.join(h.dir, name + ".notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.msgs = []  # (monotonic time, {var: value})
        self.event = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            fields = dict(l.split("=", 1) for l in data.decode().split("\n") if "=" in l)
            self.msgs.append((time.monotonic(), fields))
            self.event.set()

    def find(self, var, pattern=".*", since=0):
        for i, (t, f) in enumerate(self.msgs[since:], since):
            if var in f and re.fullmatch(pattern, f[var]):
                return i, t, f[var]
        return None

    async def wait(self, var, pattern=".*", since=0, timeout=DELIVERY):
        deadline = time.monotonic() + timeout
        while True:
            hit = self.find(var, pattern, since)
            if hit:
                return hit
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed("no %s=%s on %s (got %s)" % (var, pattern, self.path,
                                  [f for _, f in self.msgs[since:]][-8:]))
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), left)
            except asyncio.TimeoutError:
                pass

    def close(self):
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


def notify_env(sock, watchdog=True):
    env = {"NOTIFY_SOCKET": sock.path}
    if watchdog:
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    return env


async def start_manager_notified(h, sock, relay_keys=()):
    """h.start_manager with NOTIFY_SOCKET (and WATCHDOG_USEC) in its environment."""
    spawn = h.spawn

    async def spawn_with_env(name, prog, args, **kw):
        kw["env"] = dict(kw.get("env") or {}, **notify_env(sock))
        return await spawn(name, prog, args, **kw)

    h.spawn = spawn_with_env
    try:
        return await h.start_manager(relay_keys=relay_keys)
    finally:
        h.spawn = spawn


async def test(h):
    msock = NotifySocket(h, "manager")
    _, relay_key = h.state_dir("relay1")
    m = await start_manager_notified(h, msock, relay_keys=[relay_key.fp])
    i, _, _ = await h.expect(msock.wait("READY", "1", timeout=STARTUP), "the manager sent READY=1")
    # READY means servants can connect: its port accepts at once.
    _, w = await asyncio.open_connection("127.0.0.1", m.info["port"])
    w.close()
    h.check(True, "the manager's port accepts a connection once READY=1 arrived")
    _, _, first_status = await h.expect(msock.wait("STATUS", since=i), "the manager sent a STATUS")
    h.check(re.match(r"0 servants \(0 direct, 0 mapped, 0 relayed, 0 suspicious\), 0 relay nodes$", first_status),
            "the manager's first STATUS says 0 servants (%s)" % first_status)

    # The watchdog: pings every WATCHDOG_USEC/2, so several within a second.
    mark = len(msock.msgs)
    t0 = time.monotonic()
    for _ in range(3):
        hit = await h.expect(msock.wait("WATCHDOG", "1", since=mark, timeout=2.0), "a WATCHDOG=1 ping")
        mark = hit[0] + 1
    elapsed = time.monotonic() - t0
    h.check(elapsed < 3 * WATCHDOG_USEC / 1e6,
            "three WATCHDOG=1 pings within %.2fs (took %.2fs)" % (3 * WATCHDOG_USEC / 1e6, elapsed))

    # A servant: READY only once registered. With the manager frozen, alice runs (her
    # watchdog pings come) but cannot register, and says nothing of being ready.
    ssock = NotifySocket(h, "alice")
    m.signal(signal.SIGSTOP)
    try:
        alice = await h.start_servant("alice", m, env=notify_env(ssock), wait_registered=False)
        mark = 0
        for _ in range(3):
            hit = await h.expect(ssock.wait("WATCHDOG", "1", since=mark), "alice pings the watchdog")
            mark = hit[0] + 1
        h.check(ssock.find("READY") is None and not alice.find(r"registered as", "stderr"),
                "alice, not registered (the manager frozen), has not sent READY=1")
    finally:
        m.signal(signal.SIGCONT)
    await h.expect(alice.wait_log(r"registered as alice\b", STARTUP), "alice registered once the manager thawed")
    await h.expect(ssock.wait("READY", "1"), "alice sent READY=1 once registered")
    await h.expect(ssock.wait("STATUS", r"registered as alice; \d+ peers; .*"), "alice's STATUS names her")
    await h.expect(msock.wait("STATUS", r"1 servants \(.*\), 0 relay nodes", since=i),
                   "the manager's STATUS counts alice")

    # A dedicated relay: READY once registered, STATUS with its load.
    rsock = NotifySocket(h, "relay1")
    relay = await h.start_servant("relay1", m, prog="natmesh-relay", env=notify_env(rsock, watchdog=False))
    await h.expect(rsock.wait("READY", "1"), "the relay sent READY=1")
    await h.expect(rsock.wait("STATUS", r"registered; \d+ peers; 0 of 64 clients assigned \(0 attached\), "
                                        r"\d+ B in, \d+ B out, 0 dropped"),
                   "the relay's STATUS gives its load")
    h.check(rsock.find("WATCHDOG") is None, "no WATCHDOG_USEC: the relay sends no pings")
    await h.expect(msock.wait("STATUS", r"1 servants \(.*\), 1 relay nodes"), "the manager's STATUS counts the relay")

    # SIGTERM: STOPPING=1 from each, then a clean exit.
    for p, sock in ((relay, rsock), (alice, ssock), (m, msock)):
        since = len(sock.msgs)
        p.signal(signal.SIGTERM)
        await h.expect(sock.wait("STOPPING", "1", since=since), "%s sent STOPPING=1 on SIGTERM" % p.name)
        code = await p.wait_exit()
        h.check_eq(code, 0, "%s exited cleanly after SIGTERM" % p.name)
    for s in (msock, ssock, rsock):
        s.close()


if __name__ == "__main__":
    main(test, "package_notify", budget=60.0)
