#!/usr/bin/env python3
"""Attack (issue 9): anyone on the path reads every line.

Before issue 9 every link was plain TCP: the peer lists (names, ids, addresses) and every
chat line crossed the network in clear. Now every link is TLS 1.3.

The path here is the loopback interface, watched with a packet socket (AF_PACKET on lo: root
or CAP_NET_RAW; without it the test is skipped) for as long as the overlay runs, with a
socket filter (classic BPF) that keeps the TCP segments to or from the manager's port and
its range of servant ports (other tests' loopback traffic would swamp the capture): every
captured segment is searched for a marker line typed into alice and for the servants' names
(which the manager's lists carry to every servant). The kernel's drop count must be 0.

  who       does                                        must see
  manager   lists alice and bob (names made unique)     -
  alice     types the marker line                       -
  bob       -                                           the marker line, once
  the tap   captures every segment on lo                segments to and from the manager's and
                                                        bob's ports, none holding the marker or
                                                        a servant's name

Before issue 9 this fails: the marker is seen in clear on its way to bob's port, the names in
the manager's lists. Recorded on main at b96444a: "not ok 10 - the marker line never crossed
loopback in clear (seen in 1 segments, ports [(58068, 21165)])", and likewise for both names
(6 and 4 segments to and from the manager's port).
"""
import ctypes
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import Skip, main, random_id  # noqa: E402

ETH_P_ALL = 0x0003


SO_ATTACH_FILTER = 26
SOL_PACKET = 263
PACKET_STATISTICS = 6


def port_filter(port, lo, hi):
    """Classic BPF: TCP over IPv4 (first fragments) or IPv6 (TCP right after the fixed
    header) to or from port or a port in lo..hi. Both families: since issue 10 servants dial
    a peer's candidates, IPv6 first, and on one host those include its interface addresses
    (their traffic crosses lo too)."""
    prog = [
        (0x28, 0, 0, 12),          # 0  ldh [12]         ethertype
        (0x15, 0, 6, 0x0800),      # 1  jeq IPv4, else 8
        (0x30, 0, 0, 23),          # 2  ldb [23]         protocol
        (0x15, 0, 17, 6),          # 3  jeq TCP, else drop
        (0x28, 0, 0, 20),          # 4  ldh [20]         fragment offset
        (0x45, 15, 0, 0x1fff),     # 5  jset: a later fragment, drop
        (0xb1, 0, 0, 14),          # 6  ldxb 4*([14]&0xf) IP header length
        (0x05, 0, 0, 4),           # 7  ja 12
        (0x15, 0, 12, 0x86dd),     # 8  jeq IPv6, else drop
        (0x30, 0, 0, 20),          # 9  ldb [20]         next header
        (0x15, 0, 10, 6),          # 10 jeq TCP, else drop
        (0x01, 0, 0, 40),          # 11 ldx #40          fixed header length
        (0x48, 0, 0, 14),          # 12 ldh [x+14]       source port
        (0x15, 6, 0, port),        # 13 jeq port: accept
        (0x35, 0, 1, lo),          # 14 jge lo, else 16
        (0x25, 0, 4, hi),          # 15 jgt hi: 16, else accept
        (0x48, 0, 0, 16),          # 16 ldh [x+16]       destination port
        (0x15, 2, 0, port),        # 17 jeq port: accept
        (0x35, 0, 2, lo),          # 18 jge lo, else drop
        (0x25, 1, 0, hi),          # 19 jgt hi: drop, else accept
        (0x06, 0, 0, 262144),      # 20 accept
        (0x06, 0, 0, 0),           # 21 drop
    ]
    return prog


class Tap:
    """Captures the TCP segments (IPv4 and IPv6) on lo to or from a port of interest (a socket filter
    does the choosing), in a thread; counts bytes per port of interest and the segments
    holding any of the needles (a tail of each flow is kept, so a needle split across two
    segments is found too)."""

    def __init__(self, port, lo, hi):
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind(("lo", 0))
        except (PermissionError, OSError) as e:
            raise Skip("cannot capture on lo (%s): run as root or with CAP_NET_RAW" % e)
        prog = port_filter(port, lo, hi)
        insns = (ctypes.c_ubyte * (8 * len(prog))).from_buffer_copy(
            b"".join(struct.pack("HBBI", *i) for i in prog))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                             struct.pack("HxxxxxxQ", len(prog), ctypes.addressof(insns)))
        # What arrived before the filter was attached, and its statistics, go.
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(262144)
        except (BlockingIOError, OSError):
            pass
        self.sock.setblocking(True)
        self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        # A large buffer, and the kernel's count of what it dropped (checked at the end): a
        # capture that lost packets cannot say the marker was not in them.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self.sock.settimeout(0.2)
        self.needles = {}      # name -> bytes
        self.hits = {}         # name -> [(sport, dport)]
        self.ports = set()     # ports whose bytes are counted
        self.bytes = {}        # port -> payload bytes seen to or from it
        self._tails = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                pkt, addr = self.sock.recvfrom(262144)
            except socket.timeout:
                if self._stop.is_set():
                    return  # stopping, and nothing more queued: all was read
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue  # on lo every packet is seen twice: outgoing, then incoming
            self._segment(pkt[14:])

    def _segment(self, ip):
        if len(ip) >= 40 and ip[0] >> 4 == 6 and ip[6] == 6:
            tcp = ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
            src, dst = ip[8:24], ip[24:40]
        elif len(ip) >= 20 and ip[0] >> 4 == 4 and ip[9] == 6:
            ihl = (ip[0] & 15) * 4
            tcp = ip[ihl:struct.unpack(">H", ip[2:4])[0]]
            src, dst = ip[12:16], ip[16:20]
        else:
            return
        if len(tcp) < 20:
            return
        sport, dport = struct.unpack(">HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if not payload:
            return
        for p in (sport, dport):
            if p in self.ports:
                self.bytes[p] = self.bytes.get(p, 0) + len(payload)
        flow = (src, sport, dst, dport)
        data = self._tails.get(flow, b"") + payload
        for name, needle in list(self.needles.items()):
            if needle in data:
                self.hits.setdefault(name, []).append((sport, dport))
        # Shorter than any needle: a needle is counted in the segment where it ends, once.
        keep = max(len(n) for n in self.needles.values()) - 1 if self.needles else 0
        self._tails[flow] = data[-keep:] if keep > 0 else b""

    def stop(self):
        """Reads what is still queued, then stops; returns the packets the kernel dropped."""
        self._stop.set()
        self._thread.join(30)
        stats = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)  # tp_packets, tp_drops
        self.sock.close()
        return struct.unpack("II", stats)[1]


async def test(h):
    tag = random_id()[:8]
    names = {"alice": "alice-" + tag, "bob": "bob-" + tag}
    marker = "marker line %s nobody on the path may read" % random_id()
    # The ports first, so that the capture runs before anything connects.
    mport = h.free_port()
    lo, hi = h.free_port_range()
    tap = Tap(mport, lo, hi)
    try:
        tap.needles = {"the marker line": marker.encode(), names["alice"]: names["alice"].encode(),
                       names["bob"]: names["bob"].encode()}
        m = await h.start_manager(port=mport, port_range=(lo, hi))
        tap.ports.add(m.info["port"])
        alice = await h.start_servant(names["alice"], m)
        bob = await h.start_servant(names["bob"], m)
        await h.wait_peer_count([alice, bob], 2)
        bob_port = [r for r in await bob.peers() if r[0]][0][4]
        tap.ports.add(bob_port)
        h.check(lo <= bob_port <= hi, "bob listens on a port of the manager's range (%d)" % bob_port)
        await alice.send(marker)
        await h.expect(bob.wait_for_line(r"^%s: %s$" % (names["alice"], marker)), "bob shows the marker line")
        # One more line on the same connection after it: once it arrived, the marker's
        # segments were on the wire too.
        _, lines = await h.chat_round([alice], [alice, bob], "after the marker")
        # And a heartbeat round trip or two on the manager link.
        await bob.wait_log(r"heartbeat|peer list version", 5, 0)
    finally:
        dropped = tap.stop()
    h.note("captured payload bytes: manager port %d: %d, bob's port %d: %d" %
           (m.info["port"], tap.bytes.get(m.info["port"], 0), bob_port, tap.bytes.get(bob_port, 0)))
    h.check(dropped == 0, "the capture lost no packet (%d dropped)" % dropped)
    h.check(tap.bytes.get(m.info["port"], 0) > 0 and tap.bytes.get(bob_port, 0) > 0,
            "the tap saw the traffic of the manager link and of the peer link to bob")
    for what in tap.needles:
        hits = tap.hits.get(what, [])
        h.check(not hits, "%s never crossed loopback in clear%s" %
                (what, " (seen in %d segments, ports %s)" % (len(hits), hits[:3]) if hits else ""), fatal=False)


if __name__ == "__main__":
    main(test, "attack_plaintext", budget=60)
