#!/usr/bin/env python3
"""liar.py: a lying natmesh servant, for netsim scenarios (Python 3 stdlib + the openssl CLI).

It speaks the real protocol (docs/protocol.md) over TLS 1.3 like every natmesh node: it
holds an Ed25519 key of its own (made with `openssl genpkey` in --state-dir, with a
self-signed certificate), joins with an invite (or, for an --open manager, its
fingerprint), pins the manager's key, and registers as an ordinary servant that relays for
nobody (hello with max-clients="0"). Its id is derived from its key, as the manager
demands. It listens (TLS, presenting its key) on the port it announces and accepts and
reads the peer connections servants open to it, heartbeats, and complains about one named
servant several times a second, although that servant is perfectly reachable. It learns
the accused's id from the peer list and its deltas.

    liar.py (--invite INVITE|@FILE | --manager-key FP --manager IP) --state-dir DIR
            [--manager IP] [--manager-port 85] [--name liar] [--role servant|relay]
            [--accuse NAME] [--rate 5]

With --role relay it asks for the relay role in its hello (a self-declared relay, as in
issue 9's attack); a manager that grants roles only by invite or config refuses it.

It prints what it does, one line per event, so a scenario can wait for it:
    key ID (fingerprint FP) in DIR
    registered as liar (ID), heartbeat 5 s
    accusing bob (ID)
    complaint 1 about bob sent
    ...
It exits 1 if the manager refuses it or closes the session (printing why, e.g.
"session with the manager ended: manager said: ..."), 2 on bad arguments.
"""

import argparse
import asyncio
import hashlib
import os
import ssl
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

MSG = {
    "hello": 0x01, "welcome": 0x02, "listening": 0x03, "peers": 0x04, "delta": 0x05,
    "heartbeat": 0x06, "heartbeat-ack": 0x07, "peers-request": 0x08, "bye": 0x09,
    "error": 0x0A, "complaint": 0x0E, "relay-assign": 0x0F, "relay-serve": 0x10,
    "peer-hello": 0x20, "chat": 0x21,
}
NAMES = {v: k for k, v in MSG.items()}
FRAME_MAX = 1 << 20
ID_LEN = 16  # NM_ID_LEN: a node's id is the first 16 hex characters of its fingerprint
# DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")


def say(text):
    print(text, flush=True)


def frame(msg_type, payload=""):
    data = payload.encode() if isinstance(payload, str) else payload
    return b"NM" + bytes([1, MSG[msg_type]]) + struct.pack(">I", len(data)) + data


async def read_frame(reader):
    """(type, payload bytes) of the next frame; raises on EOF or a malformed header."""
    head = await reader.readexactly(8)
    if head[:2] != b"NM" or head[2] != 1:
        raise ValueError("bad frame header %r" % head)
    (length,) = struct.unpack(">I", head[4:8])
    if length > FRAME_MAX:
        raise ValueError("frame of %d bytes" % length)
    return head[3], await reader.readexactly(length)


def raw_key(der):
    """The raw Ed25519 public key in a DER certificate or public key."""
    i = der.find(ED25519_SPKI)
    if i < 0 or len(der) < i + len(ED25519_SPKI) + 32:
        raise ValueError("not an Ed25519 key")
    return der[i + len(ED25519_SPKI):i + len(ED25519_SPKI) + 32]


def fingerprint(der):
    """natmesh's fingerprint: SHA-256 of the raw key, 64 lowercase hex."""
    return hashlib.sha256(raw_key(der)).hexdigest()


def make_identity(state_dir):
    """key.pem and cert.pem in state_dir (made once with the openssl CLI); (cert, key, fp)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    key, cert = os.path.join(state_dir, "key.pem"), os.path.join(state_dir, "cert.pem")
    if not os.path.exists(key):
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True,
                       stdout=subprocess.DEVNULL)
        os.chmod(key, 0o600)
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-key", key, "-subj", "/CN=natmesh",
                        "-days", "3650", "-out", cert], check=True, stdout=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return cert, key, fingerprint(der)


def parse_invite(text):
    """natmesh-invite:v1/HOST/PORT/FINGERPRINT/SECRET[/role=relay][/expires=T]"""
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read().strip()
    prefix = "natmesh-invite:v1/"
    if not text.startswith(prefix):
        raise ValueError("not a natmesh invite: %r" % text[:40])
    rest = text[len(prefix):]
    # The host may be an IPv6 literal with colons but never a '/': fields split on '/'.
    fields = rest.split("/")
    host, port, fp, secret = fields[0], int(fields[1]), fields[2], fields[3]
    return host, port, fp, secret


def tls_context(server, cert, key):
    """TLS 1.3 only, our certificate presented; the peer's key is pinned by hand (no CA)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if not server:
        ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert, key)
    return ctx


class Liar:
    def __init__(self, args, cert, key, fp):
        self.args = args
        self.cert, self.key, self.fp = cert, key, fp
        self.id = fp[:ID_LEN]
        self.accused_id = None
        self.heartbeat = 5.0
        self.version = 0
        self.sent = 0
        self.writer = None

    async def send(self, msg_type, payload=""):
        self.writer.write(frame(msg_type, payload))
        await self.writer.drain()

    # Peers connect to us to publish their chat: accept and read, like a real servant, so
    # nobody has a reason to complain about us.
    async def on_peer(self, reader, writer):
        try:
            while True:
                await read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def learn(self, peer):
        name, pid = peer.findtext("name"), peer.findtext("id")
        if name == self.args.accuse and pid and pid != self.accused_id:
            self.accused_id = pid
            say("accusing %s (%s)" % (name, pid))

    def on_list(self, t, payload):
        root = ET.fromstring(payload.decode())
        if t == MSG["peers"]:
            self.version = int(root.get("version", "0"))
            for p in root.iter("peer"):
                self.learn(p)
        else:
            self.version = int(root.get("version", self.version))
            p = root.find("peer")
            if p is not None:
                self.learn(p)

    async def reader_loop(self, reader):
        while True:
            t, payload = await read_frame(reader)
            if t in (MSG["peers"], MSG["delta"]):
                self.on_list(t, payload)
            elif t == MSG["error"]:
                raise ConnectionError("manager said: %s" % payload.decode(errors="replace"))
            elif t == MSG["heartbeat-ack"]:
                v = int(ET.fromstring(payload.decode()).get("version", "0"))
                if v != self.version:
                    await self.send("peers-request")

    async def beat(self):
        while True:
            await asyncio.sleep(self.heartbeat / 2)
            await self.send("heartbeat", '<heartbeat version="%d"/>' % self.version)

    async def complain(self):
        while True:
            await asyncio.sleep(1.0 / self.args.rate)
            if not self.accused_id:
                continue
            await self.send("complaint", '<complaint accused="%s" reason="refused"/>' % self.accused_id)
            self.sent += 1
            say("complaint %d about %s sent" % (self.sent, self.args.accuse))

    async def run(self):
        args = self.args
        # Servants dial us to publish: TLS, presenting our key (they pin it from the list).
        server = await asyncio.start_server(self.on_peer, "0.0.0.0", 0,
                                            ssl=tls_context(True, self.cert, self.key))
        port = server.sockets[0].getsockname()[1]
        reader, self.writer = await asyncio.open_connection(
            args.manager, args.manager_port, ssl=tls_context(False, self.cert, self.key),
            server_hostname="")
        der = self.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        got = fingerprint(der)
        if got != args.manager_key:
            raise ConnectionError("manager at %s:%d presented key %s, expected %s: refusing"
                                  % (args.manager, args.manager_port, got, args.manager_key))
        secret = ' secret="%s"' % args.secret if args.secret else ""
        await self.send("hello", '<hello id="%s" name="%s" role="%s" port="%d" max-clients="0"%s/>'
                        % (self.id, args.name, args.role, port, secret))
        t, payload = await read_frame(reader)
        if t == MSG["error"]:
            raise ConnectionError("manager said: %s" % payload.decode(errors="replace"))
        if t != MSG["welcome"]:
            raise ConnectionError("expected welcome, got %s: %r" % (NAMES.get(t, t), payload[:200]))
        welcome = ET.fromstring(payload.decode())
        self.heartbeat = float(welcome.get("heartbeat", "5"))
        await self.send("listening", '<listening port="%d"/>' % port)
        t, payload = await read_frame(reader)
        if t != MSG["peers"]:
            raise ConnectionError("expected the peer list, got %s" % NAMES.get(t, t))
        say("registered as %s (%s), listening on %d, heartbeat %g s"
            % (self.args.name, self.id, port, self.heartbeat))
        self.on_list(t, payload)
        tasks = [asyncio.ensure_future(c) for c in (self.reader_loop(reader), self.beat(), self.complain())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for d in done:
                d.result()
        finally:
            for t in tasks:
                t.cancel()
            server.close()


def main():
    ap = argparse.ArgumentParser(description="a natmesh servant that lies in its complaints")
    ap.add_argument("--invite", help="an invite string, or @FILE holding one")
    ap.add_argument("--manager-key", help="the manager's fingerprint (an --open manager)")
    ap.add_argument("--state-dir", required=True, help="where our key and certificate live")
    ap.add_argument("--manager", help="the manager's address (overrides the invite's)")
    ap.add_argument("--manager-port", type=int, help="the manager's port (default: the invite's, else 85)")
    ap.add_argument("--name", default="liar")
    ap.add_argument("--role", default="servant", choices=("servant", "relay"),
                    help="the role asked for in the hello (relay: a self-declared relay)")
    ap.add_argument("--accuse", help="name of the servant to complain about")
    ap.add_argument("--rate", type=float, default=5.0, help="complaints per second")
    args = ap.parse_args()
    if args.rate <= 0:
        ap.error("--rate must be positive")
    if bool(args.invite) == bool(args.manager_key):
        ap.error("pass --invite or --manager-key")
    args.secret = None
    if args.invite:
        try:
            host, port, fp, args.secret = parse_invite(args.invite)
        except (OSError, ValueError, IndexError) as e:
            ap.error("--invite: %s" % e)
        args.manager = args.manager or host
        args.manager_port = args.manager_port or port
        args.manager_key = fp
    if not args.manager:
        ap.error("--manager-key needs --manager")
    args.manager_port = args.manager_port or 85
    try:
        cert, key, fp = make_identity(args.state_dir)
    except (OSError, subprocess.CalledProcessError) as e:
        say("cannot make a key in %s: %s" % (args.state_dir, e))
        return 2
    say("key %s (fingerprint %s) in %s" % (fp[:ID_LEN], fp, args.state_dir))
    try:
        asyncio.run(Liar(args, cert, key, fp).run())
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError, ssl.SSLError) as e:
        say("session with the manager ended: %s" % (e or type(e).__name__))
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
