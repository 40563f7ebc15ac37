"""harness: drive real natmesh programs on loopback from asyncio, Python 3 stdlib only.

A test is an async function taking a Harness. The harness
  - picks free ports (and blocks of them for the manager's --port-range),
  - starts natmesh-manager / natmesh-servant with a stdin pipe, captures stdout and stderr
    line by line (with arrival times) into memory and into files in a temp directory,
  - waits for lines event-driven: `await proc.wait_for_line(regex, timeout)` wakes on every
    new line and never sleeps for a fixed time as a means of synchronisation,
  - prints every check it makes ("ok 12 - ..." / "not ok 12 - ..."),
  - stops everything at the end, also on failure or timeout (SIGTERM so the sanitizers can
    report, then SIGKILL), and fails the test if any process printed a sanitizer report or
    died when it should not have.

Run a test module as: python3 test_x.py [--bindir DIR] [--keep]; DIR is the folder holding
all the programs, a build's bin/ (default: build/bin of this checkout).
"""

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

# Short timings keep the suite fast: the manager runs with --heartbeat 1 --timeout 3.
HEARTBEAT = 1
TIMEOUT = 3

# Generous bounds for things that should take milliseconds: a loaded CI box (and ASan)
# slows everything down, and a wait returns as soon as the line arrives anyway.
STARTUP = 15.0
DELIVERY = 10.0

# Where the programs are when no --bindir is given: build/bin of this checkout, where
# scripts/build.sh puts them.
DEFAULT_BINDIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")

SANITIZER_RX = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                          r"SUMMARY: (Address|Undefined|Leak)Sanitizer")

CHAT_RX = re.compile(r"^([A-Za-z0-9._-]{1,32}): (.*)$")
PEER_RX = re.compile(r"^(\*| ) peer (\S+) ([0-9a-f]{16}) (\S+):(\d+) (.*)$")
END_PEERS_RX = re.compile(r"^end of peers \((\d+)\)$")


class CheckFailed(Exception):
    pass


class WaitTimeout(CheckFailed):
    pass


# ---------------------------------------------------------------------------------------
# Frames, for the tests that speak the protocol themselves (hostile peers, fake managers).

MSG = {
    "hello": 0x01, "welcome": 0x02, "listening": 0x03, "peers": 0x04, "delta": 0x05,
    "heartbeat": 0x06, "heartbeat-ack": 0x07, "peers-request": 0x08, "bye": 0x09,
    "error": 0x0A, "status-request": 0x0B, "status": 0x0C, "mapping": 0x0D,
    "complaint": 0x0E, "relay-assign": 0x0F, "relay-serve": 0x10, "relay-load": 0x11,
    "peer-hello": 0x20, "chat": 0x21, "pull": 0x22,
}


def frame(msg_type, payload=b"", version=1, magic=b"NM", length=None):
    """One natmesh frame; every field can be falsified for hostile tests."""
    if isinstance(msg_type, str):
        msg_type = MSG[msg_type]
    if isinstance(payload, str):
        payload = payload.encode()
    if length is None:
        length = len(payload)
    return magic + bytes([version, msg_type]) + struct.pack(">I", length) + payload


def random_id():
    return "%016x" % random.getrandbits(64)


class RawPeer:
    """A raw TCP connection speaking (or abusing) the natmesh framing."""

    def __init__(self, reader, writer, label):
        self.reader, self.writer, self.label = reader, writer, label
        self._buf = b""

    @classmethod
    async def connect(cls, host, port, label="raw", local_host=None, timeout=5.0):
        local = (local_host, 0) if local_host else None
        r, w = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout)
        return cls(r, w, label)

    async def send(self, data):
        self.writer.write(data)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def send_frame(self, msg_type, payload=b""):
        await self.send(frame(msg_type, payload))

    async def read_frame(self, timeout=DELIVERY):
        """(type, payload) of the next frame, or None when the connection closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buf) >= 8:
                (length,) = struct.unpack(">I", self._buf[4:8])
                if len(self._buf) >= 8 + length:
                    t, p = self._buf[3], self._buf[8:8 + length]
                    self._buf = self._buf[8 + length:]
                    return t, p
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout("%s: no frame within %.1fs" % (self.label, timeout))
            try:
                data = await asyncio.wait_for(self.reader.read(65536), remaining)
            except (ConnectionError, asyncio.TimeoutError) as e:
                if isinstance(e, asyncio.TimeoutError):
                    continue
                return None
            if not data:
                return None
            self._buf += data

    async def wait_closed_by_peer(self, timeout=DELIVERY):
        """True when the other side closes (EOF or reset) within timeout; frames it sends
        meanwhile (an error frame, say) are collected in self.frames_before_close."""
        self.frames_before_close = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                f = await self.read_frame(remaining)
            except WaitTimeout:
                return False
            if f is None:
                return True
            self.frames_before_close.append(f)

    def close(self):
        with contextlib.suppress(Exception):
            self.writer.close()


def hello_doc(id_, name, port=0, role="servant", max_clients=0):
    return '<hello id="%s" name="%s" role="%s" port="%d" max-clients="%d"/>' % (
        id_, name, role, port, max_clients)


def peer_list_ids(payload):
    """{id: name} of a peers document (a frame's payload)."""
    return {p.findtext("id"): p.findtext("name") for p in ET.fromstring(payload).iter("peer")}


# ---------------------------------------------------------------------------------------
# Processes.

def _die_with_parent():
    """Runs in the child before exec: if the test runner dies (ctest timeout), so do we."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Line:
    __slots__ = ("t", "text")

    def __init__(self, t, text):
        self.t, self.text = t, text


class Hit:
    """A line that matched: the match's groups, the Line (with its arrival time) and its
    index in the stream (to wait for what comes after it)."""

    def __init__(self, match, line, index):
        self.match, self.line, self.index = match, line, index

    def group(self, *a):
        return self.match.group(*a)


class Process:
    def __init__(self, harness, name, argv, proc, expect_exit=False):
        self.h, self.name, self.argv, self.proc = harness, name, argv, proc
        self.expect_exit = expect_exit
        self.streams = {"stdout": [], "stderr": []}
        self.eof = {"stdout": False, "stderr": False}
        self._event = asyncio.Event()
        self._files = {s: open(os.path.join(harness.dir, "%s.%s" % (name, s)), "w")
                       for s in self.streams}
        self._tasks = [asyncio.ensure_future(self._pump(s, getattr(proc, s)))
                       for s in self.streams]
        self.info = {}  # whatever the starter learned (ports, ids)

    async def _pump(self, stream, reader):
        f = self._files[stream]
        while True:
            try:
                raw = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                raw = await reader.read(65536)
            if not raw:
                break
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.streams[stream].append(Line(time.monotonic(), text))
            f.write(text + "\n")
            f.flush()
            self._wake()
        self.eof[stream] = True
        self._wake()

    def _wake(self):
        self._event.set()
        self._event = asyncio.Event()

    @property
    def pid(self):
        return self.proc.pid

    @property
    def alive(self):
        return self.proc.returncode is None

    def mark(self, stream="stdout"):
        """Position to wait from: lines before it are ignored by wait_for_line(since=...)."""
        return len(self.streams[stream])

    def lines(self, stream="stdout", since=0):
        return [l.text for l in self.streams[stream][since:]]

    def find(self, pattern, stream="stdout", since=0):
        rx = re.compile(pattern)
        return [m for m in (rx.search(l.text) for l in self.streams[stream][since:]) if m]

    async def wait_for_line(self, pattern, timeout=DELIVERY, stream="stdout", since=0):
        """The first line matching pattern at or after index since; its Line is m.line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        idx = since
        while True:
            ev = self._event  # taken before scanning: no line can slip between
            lines = self.streams[stream]
            while idx < len(lines):
                m = rx.search(lines[idx].text)
                if m:
                    return Hit(m, lines[idx], idx)
                idx += 1
            if self.eof[stream]:
                raise WaitTimeout("%s: %s ended without a line matching /%s/" %
                                  (self.name, stream, pattern))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout("%s: no %s line matching /%s/ within %.1fs" %
                                  (self.name, stream, pattern, timeout))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ev.wait(), remaining)

    async def wait_log(self, pattern, timeout=DELIVERY, since=0):
        return await self.wait_for_line(pattern, timeout, "stderr", since)

    async def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()

    def signal(self, sig):
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def wait_exit(self, timeout=STARTUP):
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            raise WaitTimeout("%s did not exit within %.1fs" % (self.name, timeout))

    async def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace. Returns the exit code."""
        if self.alive:
            self.signal(signal.SIGCONT)  # a frozen process cannot handle SIGTERM
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except asyncio.TimeoutError:
                self.h.note("%s ignored SIGTERM for %.0fs: killing it" % (self.name, grace))
                self.signal(signal.SIGKILL)
                await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._tasks), 5.0)
        for f in self._files.values():
            f.close()
        return self.proc.returncode


class Servant(Process):
    """A natmesh-servant, with helpers for what a user does at its prompt."""

    def chat_lines(self, since=0):
        """[(name, text)] of the chat lines it printed."""
        out = []
        for l in self.streams["stdout"][since:]:
            if PEER_RX.match(l.text) or END_PEERS_RX.match(l.text):
                continue
            m = CHAT_RX.match(l.text)
            if m:
                out.append((m.group(1), m.group(2)))
        return out

    async def peers(self, timeout=DELIVERY):
        """Runs /peers and returns [(is_me, name, id, ip, port, rest)]."""
        since = self.mark()
        await self.send("/peers")
        end = await self.wait_for_line(END_PEERS_RX.pattern, timeout, since=since)
        rows = []
        for l in self.streams["stdout"][since:end.index]:
            m = PEER_RX.match(l.text)
            if m:
                rows.append((m.group(1) == "*", m.group(2), m.group(3), m.group(4),
                             int(m.group(5)), m.group(6)))
        if len(rows) != int(end.group(1)):
            raise CheckFailed("%s: /peers printed %d rows but said %s" %
                              (self.name, len(rows), end.group(1)))
        return rows


# ---------------------------------------------------------------------------------------
# The harness.

class Harness:
    def __init__(self, name, bindir, keep=False):
        self.name, self.bindir, self.keep = name, bindir, keep
        self.dir = tempfile.mkdtemp(prefix="natmesh-%s-" % name)
        self.procs = []
        self.checks = 0
        self.failed = False
        self.t0 = time.monotonic()
        self._ports_taken = set()

    # -- reporting --------------------------------------------------------------------
    def note(self, text):
        print("# [%6.2fs] %s" % (time.monotonic() - self.t0, text), flush=True)

    def check(self, cond, what, fatal=True):
        """Records one check. A failed check ends the test unless fatal=False, which lets
        independent checks at the end of a test all report."""
        self.checks += 1
        if cond:
            print("ok %d - %s" % (self.checks, what), flush=True)
            return True
        print("not ok %d - %s" % (self.checks, what), flush=True)
        self.failed = True
        if fatal:
            raise CheckFailed(what)
        return False

    def check_eq(self, got, want, what):
        if got != want:
            self.checks += 1
            print("not ok %d - %s: got %r, expected %r" % (self.checks, what, got, want),
                  flush=True)
            raise CheckFailed(what)
        self.check(True, "%s (%r)" % (what, got))

    async def expect(self, coro, what):
        """Awaits a wait_for_line (or similar) and records it as a check."""
        try:
            r = await coro
        except WaitTimeout as e:
            self.checks += 1
            print("not ok %d - %s: %s" % (self.checks, what, e), flush=True)
            raise CheckFailed(what)
        self.check(True, what)
        return r

    # -- ports ------------------------------------------------------------------------
    @staticmethod
    def _port_free(port, hosts=("127.0.0.1", "127.0.0.2")):
        for host in hosts:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                return False
            finally:
                s.close()
        return True

    def free_port(self):
        for _ in range(200):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            if port not in self._ports_taken and self._port_free(port):
                self._ports_taken.add(port)
                return port
        raise RuntimeError("no free port")

    def free_port_range(self, n=40):
        """A block of n consecutive ports free right now, outside the ephemeral range."""
        for _ in range(200):
            lo = random.randrange(20000, 31000)
            ports = range(lo, lo + n)
            if any(p in self._ports_taken for p in ports):
                continue
            if all(self._port_free(p) for p in ports):
                self._ports_taken.update(ports)
                return lo, lo + n - 1
        raise RuntimeError("no free port range")

    # -- programs ---------------------------------------------------------------------
    def binary(self, prog):
        path = os.path.join(self.bindir, prog)
        if not os.path.exists(path):
            raise CheckFailed("no %s in %s" % (prog, self.bindir))
        return path

    def env(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.pop("NATMESH_MANAGER", None)
        env["NATMESH_LOG"] = env.get("NATMESH_TEST_LOG", "info")
        return env

    async def spawn(self, name, prog, args, cls=Process, expect_exit=False):
        argv = [self.binary(prog)] + [str(a) for a in args]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env(), preexec_fn=_die_with_parent,
            limit=1 << 20)
        p = cls(self, name, argv, proc, expect_exit)
        self.procs.append(p)
        self.note("started %s (pid %d): %s" % (name, proc.pid, " ".join(argv[1:])))
        return p

    async def start_manager(self, port=None, heartbeat=HEARTBEAT, timeout=TIMEOUT,
                            port_range=None, name="manager", extra=()):
        port = port or self.free_port()
        lo, hi = port_range or self.free_port_range()
        args = ["--listen", "127.0.0.1", "--port", port, "--heartbeat", heartbeat,
                "--timeout", timeout, "--port-range", "%d-%d" % (lo, hi)] + list(extra)
        m = await self.spawn(name, "natmesh-manager", args)
        m.info.update(port=port, port_range=(lo, hi), heartbeat=heartbeat, timeout=timeout)
        await self.expect(m.wait_log(r"listening on 127\.0\.0\.1:%d\b" % port, STARTUP),
                          "%s listening on 127.0.0.1:%d" % (name, port))
        return m

    async def start_servant(self, name, manager, listen=None, bans=(), config=None,
                            wait_registered=True, extra=()):
        mport = manager.info["port"] if isinstance(manager, Process) else int(manager)
        args = ["--name", name, "--manager", "127.0.0.1", "--manager-port", mport,
                "--no-upnp", "--no-natpmp"]
        if listen:
            args += ["--listen", listen]
        if bans:
            config = config or self.write_config(name, bans=bans)
        if config:
            args = ["--config", config] + args
        s = await self.spawn(name, "natmesh-servant", args + list(extra), cls=Servant)
        if wait_registered:
            m = await self.expect(s.wait_log(r"registered as %s\b" % re.escape(name), STARTUP),
                                  "%s registered with the manager" % name)
            s.info["registered_at"] = m.line.t
        return s

    def write_config(self, name, bans=(), body=None):
        """A servant config.xml in the seed's format; body replaces the whole content."""
        path = os.path.join(self.dir, "%s.config.xml" % name)
        if body is None:
            items = "".join("    <ban><target>%s</target></ban>\n" % b for b in bans)
            body = ('<?xml version="1.0"?>\n<config>\n  <connectionmgr>127.0.0.1</connectionmgr>\n'
                    '  <port>85</port>\n  <bans>\n%s  </bans>\n</config>\n' % items)
        with open(path, "w") as f:
            f.write(body)
        return path

    async def run_tool(self, prog, args, timeout=STARTUP, env=None):
        """Runs a short-lived program; returns (exit code, stdout, stderr)."""
        argv = [self.binary(prog)] + [str(a) for a in args]
        e = self.env()
        if env:
            e.update(env)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=e, preexec_fn=_die_with_parent)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise CheckFailed("%s %s did not finish within %.0fs" % (prog, " ".join(map(str, args)), timeout))
        out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        self.note("%s %s -> exit %d" % (prog, " ".join(map(str, args)), proc.returncode))
        self._sanitizer_check(prog, err)
        return proc.returncode, out, err

    async def ctl(self, manager, *args, **kw):
        port = manager.info["port"] if isinstance(manager, Process) else int(manager)
        return await self.run_tool("natmesh-ctl", ["--manager", "127.0.0.1:%d" % port] + list(args), **kw)

    async def status(self, manager):
        """The manager's status document as an ElementTree root."""
        rc, out, err = await self.ctl(manager, "status", "--format", "xml")
        if rc != 0:
            raise CheckFailed("natmesh-ctl status failed (%d): %s" % (rc, err.strip()))
        return ET.fromstring(out)

    async def raw_register(self, manager, name, id_=None, port=0):
        """A raw session that registers the way a servant does (hello, welcome, listening)
        without listening for real. Returns (RawPeer, id, {id: name} of the list it got)."""
        mport = manager.info["port"] if isinstance(manager, Process) else int(manager)
        id_ = id_ or random_id()
        c = await RawPeer.connect("127.0.0.1", mport, name)
        await c.send_frame("hello", hello_doc(id_, name, port))
        f = await c.read_frame()
        if not f or f[0] != MSG["welcome"]:
            raise CheckFailed("%s: expected welcome, got %r" % (name, f and f[1][:200]))
        port = int(ET.fromstring(f[1]).get("port"))
        await c.send_frame("listening", '<listening port="%d"/>' % port)
        while True:
            f = await c.read_frame()
            if not f:
                raise CheckFailed("%s: the manager closed the session before the list" % name)
            if f[0] == MSG["peers"]:
                return c, id_, peer_list_ids(f[1])

    # -- waiting across processes -----------------------------------------------------
    async def wait_all(self, waits, what):
        """Runs several waits concurrently; records one check."""
        return await self.expect(asyncio.gather(*waits), what)

    async def wait_peer_count(self, servants, n, since=None, timeout=DELIVERY):
        """Every servant has logged a peer list of n entries (itself included)."""
        since = since or {}
        await self.wait_all(
            [s.wait_log(r"peer list version \d+ \(%d peers\)" % n, timeout, since.get(s, 0))
             for s in servants],
            "every servant holds a list of %d peers" % n)

    async def chat_round(self, senders, receivers, tag, timeout=DELIVERY):
        """Each sender types one line; every receiver other than the sender must show it.
        Returns {(sender, receiver): arrival latency}."""
        lines = {}
        sent_at = {}
        for s in senders:
            lines[s] = "%s from %s %s" % (tag, s.name, random_id())
            sent_at[s] = time.monotonic()
            await s.send(lines[s])
        waits, pairs = [], []
        for s in senders:
            for r in receivers:
                if r is s:
                    continue
                waits.append(r.wait_for_line(r"^%s: %s$" % (re.escape(s.name), re.escape(lines[s])),
                                             timeout))
                pairs.append((s, r))
        got = await self.wait_all(waits, "%s: %d lines reach their %d receivers" %
                                  (tag, len(senders), len(receivers) - 1 if len(receivers) > 1 else len(receivers)))
        return {pair: m.line.t - sent_at[pair[0]] for pair, m in zip(pairs, got)}, lines

    def check_exactly_once(self, receivers, lines, what):
        """Each line in lines (sender -> text) was shown once by every receiver but its
        sender, and never by its sender."""
        for r in receivers:
            shown = r.chat_lines()
            for s, text in lines.items():
                n = sum(1 for name, t in shown if name == s.name and t == text)
                want = 0 if r is s else 1
                if n != want:
                    self.check(False, "%s: %s shows %s's line %d times (want %d)" %
                               (what, r.name, s.name, n, want))
        self.check(True, "%s: every line shown exactly once by every other servant" % what)

    # -- teardown ---------------------------------------------------------------------
    def _sanitizer_check(self, name, text):
        for line in text.splitlines():
            if SANITIZER_RX.search(line):
                self.failed = True
                print("not ok - %s printed a sanitizer report: %s" % (name, line), flush=True)
                return False
        return True

    async def close(self):
        """Stops every process; checks none crashed or reported sanitizer errors."""
        problems = []
        crashed = [p for p in self.procs if not p.alive and not p.expect_exit and
                   p.proc.returncode != 0 and p.proc.returncode != -signal.SIGKILL and
                   not p.info.get("killed")]
        for p in crashed:
            problems.append("%s died unexpectedly (exit %s)" % (p.name, p.proc.returncode))
        await asyncio.gather(*(p.stop() for p in self.procs), return_exceptions=True)
        for p in self.procs:
            if not self._sanitizer_check(p.name, "\n".join(p.lines("stderr"))):
                problems.append("%s: sanitizer report (see %s/%s.stderr)" % (p.name, self.dir, p.name))
        for msg in problems:
            print("not ok - %s" % msg, flush=True)
        if problems:
            self.failed = True

    def dump_logs(self, tail=40):
        for p in self.procs:
            for stream in ("stderr", "stdout"):
                lines = p.lines(stream)
                if not lines:
                    continue
                print("# ---- %s %s (last %d of %d lines) ----" %
                      (p.name, stream, min(tail, len(lines)), len(lines)))
                for l in lines[-tail:]:
                    print("#   " + l)


def main(test, name, budget=100.0, add_args=None):
    """Entry point of a test module: parses --bindir, runs test(h) under a time budget.
    With add_args(parser), a module adds options of its own (it may check them and call
    parser.error); the test is then called as test(h, args)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", default=DEFAULT_BINDIR,
                    help="folder of the natmesh programs (default %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    check = add_args(ap) if add_args else None
    args = ap.parse_args()
    if check:
        check(args)

    async def run():
        h = Harness(name, os.path.abspath(args.bindir), args.keep)
        h.note("test %s, logs in %s" % (name, h.dir))
        try:
            await asyncio.wait_for(test(h, args) if add_args else test(h), budget)
        except CheckFailed as e:
            h.failed = True
            h.note("FAILED: %s" % e)
        except asyncio.TimeoutError:
            h.failed = True
            h.note("FAILED: the test took longer than its %.0fs budget" % budget)
        except Exception:
            h.failed = True
            traceback.print_exc()
        finally:
            await h.close()
        if h.failed:
            h.dump_logs()
            print("# FAIL %s after %d checks (%.1fs); logs kept in %s" %
                  (name, h.checks, time.monotonic() - h.t0, h.dir))
            return 1
        print("# PASS %s: %d checks in %.1fs" % (name, h.checks, time.monotonic() - h.t0))
        if not h.keep:
            shutil.rmtree(h.dir, ignore_errors=True)
        return 0

    sys.exit(asyncio.run(run()))
