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

Since issue 9 every node holds an Ed25519 key and every link is TLS 1.3; the harness speaks
that world (and, detecting older programs, the plain TCP one before it, so a test can be run
against both):
  - each manager and servant gets its own --state-dir in the test's folder, its key made
    beforehand with the openssl CLI (so its key and id are known: info["key"], info["id"]);
    a manager runs --open unless the test asks for invite or allow mode; a servant joins with
    --manager-key (open) or an invite it is given (h.invite runs natmesh-manager invite);
  - natmesh-ctl runs with the manager's --state-dir (the manager's own key: the operator);
  - raw connections (RawPeer, RawServant, h.connect, h.serve) are TLS 1.3 with a key of the
    test's (Key: pub, fp, id, sign_line), through memory BIOs so every byte and half-close
    stays under the test's control; a manager's key is pinned as the programs pin it.

Run a test module as: python3 test_x.py [--bindir DIR] [--keep]; DIR is the folder holding
all the programs, a build's bin/ (default: build/bin of this checkout). Needs the openssl
command (scripts/setup.sh installs it).
"""

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

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
ID_LEN = 16  # hex characters of a node id
# Whether peer lists carry keys (set by Harness.detect: since issue 9). For module-level
# helpers that build lists without a harness at hand.
SECURE_LISTS = True


class CheckFailed(Exception):
    pass


class WaitTimeout(CheckFailed):
    pass


class Skip(Exception):
    """The test cannot run here (a capability it needs is missing): exit 77, which ctest
    reports as skipped (SKIP_RETURN_CODE)."""


SKIP_EXIT = 77


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


# ---------------------------------------------------------------------------------------
# Keys, as the programs hold them since issue 9: an Ed25519 key pair per node; its
# fingerprint is the SHA-256 of the raw 32-byte public key (64 hex), its id the first 16 hex
# of that. Keys and certificates are made with the openssl CLI; a certificate's raw key is
# the 32 bytes after the DER SubjectPublicKeyInfo prefix of an Ed25519 key.

ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
LINESIG_TAG = b"natmesh-line-v1"


def pubkey_of_cert(der):
    """The raw Ed25519 public key of a DER certificate."""
    i = der.find(ED25519_SPKI_PREFIX)
    if i < 0 or len(der) < i + len(ED25519_SPKI_PREFIX) + 32:
        raise ValueError("not a certificate over an Ed25519 key")
    i += len(ED25519_SPKI_PREFIX)
    return der[i:i + 32]


def fingerprint_of(pub):
    return hashlib.sha256(pub).hexdigest()


def line_canonical(origin, epoch, seq, text):
    """The bytes a chat line's signature covers (src/nm_linesig.h): u32 15 | tag | u32 len |
    origin | u64 epoch | u64 seq | u32 len | text, big-endian."""
    o = origin.encode()
    t = text.encode() if isinstance(text, str) else text
    return (struct.pack(">I", len(LINESIG_TAG)) + LINESIG_TAG + struct.pack(">I", len(o)) + o +
            struct.pack(">QQ", epoch, seq) + struct.pack(">I", len(t)) + t)


def _openssl(*args):
    try:
        r = subprocess.run(["openssl"] + [str(a) for a in args], capture_output=True, timeout=30)
    except FileNotFoundError:
        raise CheckFailed("the openssl command is needed (package openssl)")
    if r.returncode != 0:
        raise CheckFailed("openssl %s failed: %s" % (args[0], r.stderr.decode("utf-8", "replace").strip()))
    return r.stdout


class Key:
    """An Ed25519 key pair held by a test: key_path (PKCS#8 PEM, the form of a state dir's
    key.pem), cert_path (a self-signed certificate over it, for TLS), pub (the raw 32 bytes),
    pub_hex (as peer lists carry it), fp (the fingerprint) and id."""

    def __init__(self, key_path, cert_path):
        self.key_path, self.cert_path = key_path, cert_path
        with open(cert_path) as f:
            self.pub = pubkey_of_cert(ssl.PEM_cert_to_DER_cert(f.read()))
        self.pub_hex = self.pub.hex()
        self.fp = fingerprint_of(self.pub)
        self.id = self.fp[:ID_LEN]
        self._contexts = {}

    @classmethod
    def create(cls, key_path, cert_path=None):
        """A new key at key_path (mode 0600), or the one already there; and a certificate
        over it at cert_path (default: next to the key)."""
        cert_path = cert_path or key_path + ".cert.pem"
        if not os.path.exists(key_path):
            _openssl("genpkey", "-algorithm", "ed25519", "-out", key_path)
            os.chmod(key_path, 0o600)
        if not os.path.exists(cert_path):
            _openssl("req", "-x509", "-key", key_path, "-subj", "/CN=natmesh", "-days", "3650",
                     "-out", cert_path)
        return cls(key_path, cert_path)

    def sign(self, data):
        """Ed25519 over data (openssl pkeyutl -rawin: pure EdDSA, as natmesh signs)."""
        with tempfile.NamedTemporaryFile(prefix="natmesh-sign-") as f:
            f.write(data)
            f.flush()
            sig = _openssl("pkeyutl", "-sign", "-inkey", self.key_path, "-rawin", "-in", f.name)
        if len(sig) != 64:
            raise CheckFailed("openssl pkeyutl made a signature of %d bytes" % len(sig))
        return sig

    def sign_line(self, origin, epoch, seq, text):
        """A chat line's sig attribute: 128 hex."""
        return self.sign(line_canonical(origin, epoch, seq, text)).hex()

    def context(self, server_side):
        """TLS 1.3 only, our certificate presented; the peer's key is pinned by the caller
        (natmesh's certificates are self-signed: no chain to verify, as in nm_tls). A Python
        server does not ask for the client's certificate (ssl has no way to accept an
        unverifiable one), so a fake server does not learn who connected."""
        if server_side not in self._contexts:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            if not server_side:
                ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(self.cert_path, self.key_path)
            self._contexts[server_side] = ctx
        return self._contexts[server_side]


# ---------------------------------------------------------------------------------------
# Raw connections: a test speaking (or abusing) the protocol itself.

class PinMismatch(CheckFailed):
    pass


class RawPeer:
    """A raw connection speaking (or abusing) the natmesh framing: plain TCP, or TLS 1.3
    through memory BIOs (start_tls), so that a test still controls every byte it sends and
    when it half-closes."""

    def __init__(self, reader, writer, label):
        self.reader, self.writer, self.label = reader, writer, label
        self._buf = b""
        self.tls = None       # the ssl.SSLObject once start_tls ran
        self.peer_fp = None   # the key the other side proved (TLS)
        self.tls_error = None  # why TLS ended, when it failed after the handshake
        self.frames_before_close = []
        self.rx_wire = 0       # bytes read from the socket (TLS records included)

    @classmethod
    async def connect(cls, host, port, label="raw", local_host=None, timeout=5.0, key=None,
                      expect_fp=None):
        """Plain TCP, or TLS with key's certificate when key is given; expect_fp pins the
        server's key (PinMismatch when it presents another)."""
        local = (local_host, 0) if local_host else None
        r, w = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout)
        c = cls(r, w, label)
        if key is not None:
            try:
                await c.start_tls(key, False, expect_fp, timeout=max(timeout, DELIVERY))
            except BaseException:
                c.close()
                raise
        return c

    # -- TLS --------------------------------------------------------------------------
    def _flush_tls(self):
        data = self._out.read()
        if data:
            self.writer.write(data)

    async def start_tls(self, key, server_side, expect_fp=None, timeout=DELIVERY):
        """The TLS 1.3 handshake on this connection, as client or server. Raises
        ConnectionError when it fails, PinMismatch when expect_fp is not the peer's key."""
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = key.context(server_side).wrap_bio(self._in, self._out, server_side=server_side)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_tls()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionError("%s: TLS handshake not done within %.1fs" % (self.label, timeout))
                try:
                    data = await asyncio.wait_for(self.reader.read(65536), remaining)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    raise ConnectionError("%s: closed during the TLS handshake" % self.label)
                self._in.write(data)
            except ssl.SSLError as e:
                self._flush_tls()  # our alert, if any
                raise ConnectionError("%s: TLS handshake failed: %s" % (self.label, e))
        self._flush_tls()
        der = self.tls.getpeercert(binary_form=True)
        self.peer_fp = fingerprint_of(pubkey_of_cert(der)) if der else None
        if expect_fp and self.peer_fp != expect_fp:
            raise PinMismatch("%s: the server presented key %s, expected %s" %
                              (self.label, self.peer_fp, expect_fp))
        return self.peer_fp

    async def _recv(self, timeout):
        """Plaintext bytes, b"" when the connection ended; asyncio.TimeoutError after
        timeout."""
        if not self.tls:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            self.rx_wire += len(data)
            return data
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.tls.read(65536)
                self._flush_tls()  # a KeyUpdate answered, say
                return data
            except ssl.SSLWantReadError:
                self._flush_tls()
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLError as e:
                self.tls_error = str(e)
                return b""
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError()
            data = await asyncio.wait_for(self.reader.read(65536), remaining)
            self.rx_wire += len(data)
            if data:
                self._in.write(data)
            else:
                self._in.write_eof()

    # -- sending and receiving --------------------------------------------------------
    def write(self, data):
        """Queues data (encrypted when TLS) without waiting for the socket to take it."""
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            if self.tls:
                view = memoryview(data)
                while view:
                    n = self.tls.write(view)
                    view = view[n:]
                    self._flush_tls()
            else:
                self.writer.write(data)

    async def send(self, data):
        self.write(data)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.drain()

    async def send_frame(self, msg_type, payload=b""):
        await self.send(frame(msg_type, payload))

    def half_close(self):
        """Ends our direction only (TLS: close_notify first), as a peer that has said all
        it will say."""
        with contextlib.suppress(Exception):
            if self.tls:
                with contextlib.suppress(ssl.SSLError):
                    self.tls.unwrap()
                self._flush_tls()
            self.writer.write_eof()

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
                data = await self._recv(remaining)
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

    def errors_before_close(self):
        """The text of the error frames received by wait_closed_by_peer."""
        return [p.decode("utf-8", "replace") for t, p in self.frames_before_close if t == MSG["error"]]

    def close(self):
        with contextlib.suppress(Exception):
            self.writer.close()


def hello_doc(id_, name, port=0, role="servant", max_clients=0, secret=None):
    return '<hello id="%s" name="%s" role="%s" port="%d" max-clients="%d"%s/>' % (
        id_, name, role, port, max_clients, ' secret="%s"' % secret if secret else "")


def chat_doc(origin, name, seq, text, epoch=None, sig=None, escape=True):
    """A chat document; epoch and sig are left out when None (the form before issue 9).
    text is escaped for XML unless escape=False (hostile tests write their own markup)."""
    attrs = ' epoch="%s"' % epoch if epoch is not None else ""
    attrs += ' seq="%s"' % seq
    if sig is not None:
        attrs += ' sig="%s"' % sig
    return '<chat origin="%s" name="%s"%s>%s</chat>' % (origin, name, attrs,
                                                        xml_escape(text) if escape else text)


async def first_of(**waits):
    """Runs the named awaitables at once; returns (name, result) of the first to finish with
    a true result and no exception (the others are cancelled), or (None, None) when none
    does. E.g. first_of(shown=s.wait_for_line(...), closed=c.wait_closed_by_peer())."""
    tasks = {asyncio.ensure_future(w): name for name, w in waits.items()}
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if not t.cancelled() and t.exception() is None and t.result():
                    return tasks[t], t.result()
        return None, None
    finally:
        for t in pending:
            t.cancel()
        for t in tasks:
            if t.done() and not t.cancelled():
                t.exception()  # retrieved: no "never retrieved" warning


def peer_list_ids(payload):
    """{id: name} of a peers document (a frame's payload)."""
    return {p.findtext("id"): p.findtext("name") for p in ET.fromstring(payload).iter("peer")}


def peer_list_keys(payload):
    """{id: raw key hex} of a peers (or delta) document."""
    return {p.findtext("id"): p.findtext("key") for p in ET.fromstring(payload).iter("peer")}


# ---------------------------------------------------------------------------------------
# Processes.

def _die_with_parent():
    """Runs in the child before exec: if the test runner dies (ctest timeout), so do we."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


async def _event_or_timeout(ev, timeout):
    """Waits for ev or timeout. Not asyncio.wait_for: in Python 3.11 it can swallow a
    cancellation that arrives as the event fires, and a cancelled wait would then run on."""
    waiter = asyncio.ensure_future(ev.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()


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
            await _event_or_timeout(ev, remaining)

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

    @property
    def id(self):
        """Its id: its key's (known from the start once programs hold keys), else the one it
        logged when it registered."""
        if "id" not in self.info:
            m = self.find(r"registered as \S+ \(([0-9a-f]{16})\)", "stderr")
            if not m:
                raise CheckFailed("%s has not registered: no id known" % self.name)
            self.info["id"] = m[0].group(1)
        return self.info["id"]

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


class RawServant:
    """A servant in the protocol's eyes, played by the test: fake servants, liars, imposters,
    attackers holding a key of their own. hello() says hello (with its key's id once the
    programs have keys) and returns the manager's first answer; listening() says listening
    and returns the list it gets; register() does both and checks them. It listens on the
    port it announces (TLS with its key), so peers that publish to it find it, and keeps
    every frame they send in inbox; start() runs heartbeats and reads what the manager sends
    into frames (the list it holds is kept current in `peers`)."""

    def __init__(self, h, name, key=None, id_=None, role="servant", max_clients=0, listen=True,
                 port=None, host="127.0.0.1"):
        """host: the address it listens on and talks to the manager from."""
        self.h, self.name, self.role, self.max_clients = h, name, role, max_clients
        self.host = host
        self.key = key if key is not None else (h.new_key("raw-" + name) if h.secure else None)
        self.id = id_ or (self.key.id if self.key is not None and h.secure else random_id())
        self.listen, self.port = listen, port
        self.server = None
        self.conn = None
        self.frames = []          # (type, payload) the manager sent after the list
        self.inbox = []           # (RawPeer, type, payload) peers sent to our port
        self.peers = {}           # id -> <peer> element of the list we hold
        self._paging = {}         # a paged list being put together
        self.version = 0
        self.sent_complaints = 0
        self._event = asyncio.Event()
        self._tasks = []

    def _wake(self):
        self._event.set()
        self._event = asyncio.Event()

    async def _on_peer(self, c):
        while True:
            f = await c.read_frame(3600)
            if f is None:
                return
            self.inbox.append((c, f[0], f[1]))
            self._wake()

    async def wait_inbox(self, pred, timeout=DELIVERY, what="a frame"):
        """The first inbox entry (conn, type, payload) for which pred holds."""
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            ev = self._event
            while i < len(self.inbox):
                if pred(*self.inbox[i]):
                    return self.inbox[i]
                i += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout("%s: no %s within %.1fs" % (self.name, what, timeout))
            await _event_or_timeout(ev, remaining)

    async def hello(self, manager, secret=None, local_host=None):
        """Connects and says hello; returns the manager's first frame (None: it closed)."""
        local_host = local_host or (self.host if self.host != "127.0.0.1" else None)
        if self.port is None:
            if self.listen:
                self.server, self.port = await self.h.serve(self._on_peer, self.key, host=self.host,
                                                            label="%s's port" % self.name)
            else:
                self.port = 0
        self.conn = await self.h.connect(manager, "%s (manager session)" % self.name, key=self.key,
                                         local_host=local_host)
        await self.conn.send_frame("hello", hello_doc(self.id, self.name, self.port, self.role,
                                                      self.max_clients, secret))
        return await self.conn.read_frame()

    async def listening(self, port=None):
        """Says listening; returns {id: name} of the list the manager sends."""
        await self.conn.send_frame("listening", '<listening port="%d"/>' % (port or self.port))
        while True:
            f = await self.conn.read_frame()
            if not f:
                raise CheckFailed("%s: the manager closed the session before the list" % self.name)
            if f[0] == MSG["error"]:
                raise CheckFailed("%s: the manager said: %s" % (self.name, f[1].decode("utf-8", "replace")))
            if f[0] == MSG["peers"]:
                if self._on_list(f[0], f[1]):
                    return {i: p.findtext("name") for i, p in self.peers.items()}
                continue
            self.frames.append(f)

    async def register(self, manager, secret=None, local_host=None):
        """hello, welcome, listening; returns {id: name} of the list."""
        f = await self.hello(manager, secret, local_host)
        if not f or f[0] != MSG["welcome"]:
            raise CheckFailed("%s: expected welcome, got %r" % (self.name, f and f[1][:200]))
        if not self.port:
            self.port = int(ET.fromstring(f[1]).get("port"))
        return await self.listening()

    def _on_list(self, t, payload):
        """Applies a list (or one of its pages) or a delta (its changes in order). Returns
        True when the list is whole (False: more pages are due)."""
        root = ET.fromstring(payload)
        if t == MSG["peers"]:
            page, pages = int(root.get("page", "0")), int(root.get("pages", "1"))
            entries = {p.findtext("id"): p for p in root.iter("peer")}
            if page == 0:
                self._paging = {}
            self._paging.update(entries)
            if page < pages - 1:
                return False
            self.peers, self._paging = self._paging, {}
        else:
            for c in root:
                if c.tag == "peer":
                    self.peers[c.findtext("id")] = c
                elif c.tag == "leave":
                    self.peers.pop(c.get("id"), None)
        self.version = int(root.get("version", self.version))
        return True

    def start(self, heartbeat=True):
        """Reads the manager's frames in the background (keeping the list current) and
        heartbeats, as a live servant does."""
        self._tasks.append(asyncio.ensure_future(self._drain()))
        if heartbeat:
            self._tasks.append(asyncio.ensure_future(self._beat()))

    async def _drain(self):
        while True:
            f = await self.conn.read_frame(3600)
            if f is None:
                return
            self.frames.append(f)
            if f[0] in (MSG["peers"], MSG["delta"]):
                self._on_list(*f)
            elif f[0] == MSG["heartbeat-ack"]:
                v = int(ET.fromstring(f[1]).get("version", "0"))
                if v != self.version:
                    await self.conn.send_frame("peers-request")
            self._wake()

    async def _beat(self):
        while True:
            await self.conn.send_frame("heartbeat", '<heartbeat version="%d"/>' % self.version)
            await asyncio.sleep(HEARTBEAT * 0.5)

    def complain(self, accused_id, every=0.2):
        """Complains about accused_id every `every` seconds, in the background."""
        async def loop():
            while True:
                await self.conn.send_frame("complaint", '<complaint accused="%s" reason="refused"/>' % accused_id)
                self.sent_complaints += 1
                await asyncio.sleep(every)
        self._tasks.append(asyncio.ensure_future(loop()))

    def stop(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []
        if self.conn:
            self.conn.close()
        if self.server:
            self.server.close()


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
        # Whether the programs speak the protocol of issue 9 (keys, TLS on every link,
        # admission); detect() finds out. Tests written for both worlds ask h.secure.
        self.secure = True
        self._keys = {}
        self.servers = []

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

    # -- keys, state dirs, TLS ---------------------------------------------------------
    async def detect(self):
        """Whether the programs are those of issue 9 (natmesh-manager knows --state-dir):
        then every link is TLS and nodes hold keys; before it, plain TCP."""
        rc, out, err = await self.run_tool("natmesh-manager", ["--help"], quiet=True)
        self.secure = "--state-dir" in out + err
        global SECURE_LISTS
        SECURE_LISTS = self.secure
        self.note("the programs %s" % ("hold keys and speak TLS (issue 9)" if self.secure else
                                       "speak plain TCP (before issue 9)"))
        return self.secure

    def new_key(self, name):
        """A key of the test's own (made once per name): for attackers, fake managers,
        fake relays, raw servants."""
        if name not in self._keys:
            folder = os.path.join(self.dir, "keys")
            os.makedirs(folder, exist_ok=True)
            self._keys[name] = Key.create(os.path.join(folder, name + ".pem"))
        return self._keys[name]

    def stranger_key(self):
        """The key of anyone on the internet: admitted nowhere, listed nowhere."""
        return self.new_key("stranger")

    def state_dir(self, name):
        """A program's --state-dir in the test's folder (0700), with its key.pem made
        beforehand (0600), so the test knows the node's key and id before it starts.
        The same name gives the same folder (a restart keeps its key). Returns (dir, Key)."""
        d = os.path.join(self.dir, "state", name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.chmod(d, 0o700)
        os.chmod(os.path.dirname(d), 0o700)
        key = Key.create(os.path.join(d, "key.pem"), os.path.join(self.dir, "state", name + ".cert.pem"))
        return d, key

    async def connect(self, target, label="raw", key=None, expect_fp=None, local_host=None,
                      host="127.0.0.1", timeout=5.0):
        """A raw connection to target (a Process with info["port"], or a port) the way the
        programs connect: TLS with key (default: the stranger's) once they speak TLS, pinning
        expect_fp (default: a manager's own key); plain TCP before."""
        port = target
        if isinstance(target, Process):
            port = target.info["port"]
            expect_fp = expect_fp or target.info.get("fp")
        if not self.secure:
            return await RawPeer.connect(host, port, label, local_host, timeout)
        return await RawPeer.connect(host, port, label, local_host, timeout,
                                     key=key or self.stranger_key(), expect_fp=expect_fp)

    async def serve(self, handler, key=None, host="127.0.0.1", port=None, label="fake",
                    on_accept=None):
        """A listener on host:port (default: a free port) handing each connection to
        handler(RawPeer) once its TLS handshake (as the server, with key) is done; plain TCP
        when the programs speak it or key is None. on_accept(RawPeer), if given, is called
        for every connection before its handshake (a client that refuses our key never
        reaches the handler). Returns (server, port); closed at the end."""
        port = port or self.free_port()

        async def on_conn(reader, writer):
            c = RawPeer(reader, writer, "%s <- %s" % (label, writer.get_extra_info("peername")))
            try:
                if on_accept:
                    on_accept(c)
                if self.secure and key is not None:
                    await c.start_tls(key, True)
                await handler(c)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as e:
                c.tls_error = str(e)
                self.note(str(e))
            except asyncio.CancelledError:
                pass  # the test is over: asyncio's stream callback must not see it raised
            finally:
                c.close()

        server = await asyncio.start_server(on_conn, host, port)
        self.servers.append(server)
        return server, port

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
        # Run under systemd (a CI service), the programs would talk to its notify socket.
        for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(var, None)
        env["NATMESH_LOG"] = env.get("NATMESH_TEST_LOG", "info")
        return env

    async def spawn(self, name, prog, args, cls=Process, expect_exit=False, env=None):
        argv = [self.binary(prog)] + [str(a) for a in args]
        e = self.env()
        e.update(env or {})
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=e, preexec_fn=_die_with_parent,
            limit=1 << 20)
        p = cls(self, name, argv, proc, expect_exit)
        self.procs.append(p)
        self.note("started %s (pid %d): %s" % (name, proc.pid, " ".join(argv[1:])))
        return p

    async def start_manager(self, port=None, heartbeat=HEARTBEAT, timeout=TIMEOUT,
                            port_range=None, name="manager", extra=(), admission="open",
                            state_dir=None, relay_keys=(), admin_keys=()):
        """A manager on 127.0.0.1. Once the programs hold keys: its own --state-dir (named
        after it; pass state_dir=other.info["state_dir"] to restart the same manager, same
        key), --open unless admission is "invite" or "allow", and --relay-key / --admin-key
        for each fingerprint given. info: port, port_range, state_dir, key, fp, admission."""
        port = port or self.free_port()
        lo, hi = port_range or self.free_port_range()
        args = ["--listen", "127.0.0.1", "--port", port, "--heartbeat", heartbeat,
                "--timeout", timeout, "--port-range", "%d-%d" % (lo, hi)]
        info = {}
        if self.secure:
            if state_dir:
                key = Key.create(os.path.join(state_dir, "key.pem"), state_dir + ".cert.pem")
            else:
                state_dir, key = self.state_dir(name)
            args += ["--state-dir", state_dir]
            args += ["--open"] if admission == "open" else ["--admission", admission]
            for fp in relay_keys:
                args += ["--relay-key", fp]
            for fp in admin_keys:
                args += ["--admin-key", fp]
            info.update(state_dir=state_dir, key=key, fp=key.fp, admission=admission)
        m = await self.spawn(name, "natmesh-manager", args + list(extra))
        m.info.update(port=port, port_range=(lo, hi), heartbeat=heartbeat, timeout=timeout, **info)
        await self.expect(m.wait_log(r"listening on 127\.0\.0\.1:%d\b" % port, STARTUP),
                          "%s listening on 127.0.0.1:%d" % (name, port))
        return m

    async def invite(self, manager, relay=False, address=None, extra=()):
        """An invite from manager's state dir (natmesh-manager --state-dir D invite), for
        its address on loopback unless address is given."""
        args = ["--state-dir", manager.info["state_dir"], "invite", "--address",
                address or "127.0.0.1:%d" % manager.info["port"]]
        if relay:
            args.append("--relay")
        rc, out, err = await self.run_tool("natmesh-manager", args + list(extra))
        if rc != 0 or not out.strip().startswith("natmesh-invite:"):
            raise CheckFailed("natmesh-manager invite failed (%d): %s" % (rc, (err or out).strip()[-300:]))
        return out.strip()

    async def join_args(self, manager, invite=None, manager_key=None, relay=False):
        """How a servant or relay joins manager, once programs hold keys: --invite when given
        (or the manager admits by invite: one is made), else --manager-key (the manager's
        own key, or manager_key for a fake one)."""
        if invite:
            return ["--invite", invite]
        if manager_key:
            return ["--manager-key", manager_key]
        if not isinstance(manager, Process):
            raise CheckFailed("a servant of a fake manager needs manager_key (its fingerprint)")
        if manager.info.get("admission", "open") == "open":
            return ["--manager-key", manager.info["fp"]]
        return ["--invite", await self.invite(manager, relay=relay)]

    async def start_servant(self, name, manager, listen=None, bans=(), config=None,
                            wait_registered=True, extra=(), invite=None, manager_key=None,
                            prog="natmesh-servant", env=None):
        """A servant (or, with prog="natmesh-relay", a relay) of manager (a Process, or the
        port of a fake one: then pass manager_key). Once programs hold keys it has its own
        --state-dir named after it (its key made beforehand: info["key"], info["id"]) and
        joins with join_args()."""
        mport = manager.info["port"] if isinstance(manager, Process) else int(manager)
        args = ["--name", name, "--manager", "127.0.0.1", "--manager-port", mport,
                "--no-upnp", "--no-natpmp"]
        if listen:
            args += ["--listen", listen]
        if bans:
            config = config or self.write_config(name, bans=bans)
        if config:
            args = ["--config", config] + args
        info = {}
        if self.secure:
            state_dir, key = self.state_dir(name)
            args += ["--state-dir", state_dir]
            args += await self.join_args(manager, invite, manager_key, relay=prog == "natmesh-relay")
            info.update(state_dir=state_dir, key=key, id=key.id)
        s = await self.spawn(name, prog, args + list(extra), cls=Servant, env=env)
        s.info.update(info)
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

    async def run_tool(self, prog, args, timeout=STARTUP, env=None, quiet=False):
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
        if not quiet:
            self.note("%s %s -> exit %d" % (prog, " ".join(map(str, args)), proc.returncode))
        self._sanitizer_check(prog, err)
        return proc.returncode, out, err

    async def ctl(self, manager, *args, **kw):
        """natmesh-ctl --manager 127.0.0.1:PORT ARGS; for a manager the harness started, once
        programs hold keys, with --state-dir of that manager (its own key, the operator's
        local path)."""
        port = manager.info["port"] if isinstance(manager, Process) else int(manager)
        pre = ["--manager", "127.0.0.1:%d" % port]
        if self.secure and isinstance(manager, Process):
            pre += ["--state-dir", manager.info["state_dir"]]
        return await self.run_tool("natmesh-ctl", pre + list(args), **kw)

    async def status(self, manager):
        """The manager's status document as an ElementTree root."""
        rc, out, err = await self.ctl(manager, "status", "--format", "xml")
        if rc != 0:
            raise CheckFailed("natmesh-ctl status failed (%d): %s" % (rc, err.strip()))
        return ET.fromstring(out)

    async def raw_register(self, manager, name, id_=None, port=0, key=None):
        """A raw session that registers the way a servant does (hello, welcome, listening)
        without listening for real. Returns (RawPeer, id, {id: name} of the list it got).
        Once programs hold keys the session is TLS with key (default: a new one named after
        it) and the id is the key's; id_ only counts before that."""
        rs = RawServant(self, name, key=key, id_=None if self.secure else id_, listen=False, port=port)
        lst = await rs.register(manager)
        return rs.conn, rs.id, lst

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
        for server in self.servers:
            server.close()
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
            await h.detect()
            await asyncio.wait_for(test(h, args) if add_args else test(h), budget)
        except Skip as e:
            h.skipped = str(e)
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
        if getattr(h, "skipped", None) and not h.failed:
            print("# SKIP %s: %s" % (name, h.skipped))
            shutil.rmtree(h.dir, ignore_errors=True)
            return SKIP_EXIT
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
