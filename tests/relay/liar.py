#!/usr/bin/env python3
"""liar.py: a lying natmesh servant, for netsim scenarios (Python 3 stdlib only).

It speaks the real protocol (docs/protocol.md): registers with the manager as an ordinary
servant that relays for nobody (hello with max-clients="0"), listens on the port it
announces and accepts (and reads) the peer connections servants open to it, heartbeats,
and complains about one named servant several times a second, although that servant is
perfectly reachable. It learns the accused's id from the peer list and its deltas.

    liar.py --manager IP [--manager-port 85] [--name liar] --accuse NAME [--rate 5]

It prints what it does, one line per event, so a scenario can wait for it:
    registered as liar (ID), heartbeat 5 s
    accusing bob (ID)
    complaint 1 about bob sent
    ...
It exits 1 if the manager closes the session (printing why), 2 on bad arguments.
"""

import argparse
import asyncio
import random
import struct
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


class Liar:
    def __init__(self, args):
        self.args = args
        self.id = "%016x" % random.getrandbits(64)
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
        server = await asyncio.start_server(self.on_peer, "0.0.0.0", 0)
        port = server.sockets[0].getsockname()[1]
        reader, self.writer = await asyncio.open_connection(self.args.manager, self.args.manager_port)
        await self.send("hello", '<hello id="%s" name="%s" role="servant" port="%d" max-clients="0"/>'
                        % (self.id, self.args.name, port))
        t, payload = await read_frame(reader)
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
    ap.add_argument("--manager", required=True)
    ap.add_argument("--manager-port", type=int, default=85)
    ap.add_argument("--name", default="liar")
    ap.add_argument("--accuse", required=True, help="name of the servant to complain about")
    ap.add_argument("--rate", type=float, default=5.0, help="complaints per second")
    args = ap.parse_args()
    if args.rate <= 0:
        ap.error("--rate must be positive")
    try:
        asyncio.run(Liar(args).run())
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError) as e:
        say("session with the manager ended: %s" % (e or type(e).__name__))
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
