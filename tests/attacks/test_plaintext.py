#!/usr/bin/env python3
"""Attack (issue 9): anyone on the path reads every line.

Before issue 9 every link was plain TCP: the peer lists (names, ids, addresses) and every
chat line crossed the network in clear. Now every link is TLS 1.3.

The path here is the loopback interface, watched with a packet socket (AF_PACKET on lo: root
or CAP_NET_RAW; without it the test is skipped) for as long as the overlay runs: every
captured TCP segment is searched for a marker line typed into alice and for the servants'
names (which the manager's lists carry to every servant).

  who       does                                        must see
  manager   lists alice and bob (names made unique)     -
  alice     types the marker line                       -
  bob       -                                           the marker line, once
  the tap   captures every segment on lo                segments to and from the manager's and
                                                        bob's ports, none holding the marker or
                                                        a servant's name

Before issue 9 this fails: the marker is seen in clear on its way to bob's port, the names in
the manager's lists. Recorded on main at b96444a: "not ok 8 - the marker line never crossed
loopback in clear (seen in 1 segments, ports [(34824, 30497)])", and likewise for both names
(6 and 4 segments to and from the manager's port).
"""
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import Skip, main, random_id  # noqa: E402

ETH_P_ALL = 0x0003


class Tap:
    """Captures every IPv4 TCP segment on lo in a thread; counts bytes per port of interest
    and the segments holding any of the needles (a tail of each flow is kept, so a needle
    split across two segments is found too)."""

    def __init__(self):
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            self.sock.bind(("lo", 0))
        except (PermissionError, OSError) as e:
            raise Skip("cannot capture on lo (%s): run as root or with CAP_NET_RAW" % e)
        self.sock.settimeout(0.1)
        self.needles = {}      # name -> bytes
        self.hits = {}         # name -> [(sport, dport)]
        self.ports = set()     # ports whose bytes are counted
        self.bytes = {}        # port -> payload bytes seen to or from it
        self._tails = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                pkt, addr = self.sock.recvfrom(262144)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue  # on lo every packet is seen twice: outgoing, then incoming
            self._segment(pkt[14:])

    def _segment(self, ip):
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            return
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            return
        sport, dport = struct.unpack(">HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4:]
        if not payload:
            return
        for p in (sport, dport):
            if p in self.ports:
                self.bytes[p] = self.bytes.get(p, 0) + len(payload)
        flow = (ip[12:16], sport, ip[16:20], dport)
        data = self._tails.get(flow, b"") + payload
        for name, needle in list(self.needles.items()):
            if needle in data:
                self.hits.setdefault(name, []).append((sport, dport))
        # Shorter than any needle: a needle is counted in the segment where it ends, once.
        keep = max(len(n) for n in self.needles.values()) - 1 if self.needles else 0
        self._tails[flow] = data[-keep:] if keep > 0 else b""

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


async def test(h):
    tag = random_id()[:8]
    names = {"alice": "alice-" + tag, "bob": "bob-" + tag}
    marker = "marker line %s nobody on the path may read" % random_id()
    tap = Tap()
    try:
        tap.needles = {"the marker line": marker.encode(), names["alice"]: names["alice"].encode(),
                       names["bob"]: names["bob"].encode()}
        m = await h.start_manager()
        tap.ports.add(m.info["port"])
        alice = await h.start_servant(names["alice"], m)
        bob = await h.start_servant(names["bob"], m)
        await h.wait_peer_count([alice, bob], 2)
        bob_port = [r for r in await bob.peers() if r[0]][0][4]
        tap.ports.add(bob_port)
        await alice.send(marker)
        await h.expect(bob.wait_for_line(r"^%s: %s$" % (names["alice"], marker)), "bob shows the marker line")
        # One more line on the same connection after it: once it arrived, the marker's
        # segments were on the wire too.
        _, lines = await h.chat_round([alice], [alice, bob], "after the marker")
        # And a heartbeat round trip or two on the manager link.
        await bob.wait_log(r"heartbeat|peer list version", 5, 0)
    finally:
        tap.stop()
    h.note("captured payload bytes: manager port %d: %d, bob's port %d: %d" %
           (m.info["port"], tap.bytes.get(m.info["port"], 0), bob_port, tap.bytes.get(bob_port, 0)))
    h.check(tap.bytes.get(m.info["port"], 0) > 0 and tap.bytes.get(bob_port, 0) > 0,
            "the tap saw the traffic of the manager link and of the peer link to bob")
    for what in tap.needles:
        hits = tap.hits.get(what, [])
        h.check(not hits, "%s never crossed loopback in clear%s" %
                (what, " (seen in %d segments, ports %s)" % (len(hits), hits[:3]) if hits else ""), fatal=False)


if __name__ == "__main__":
    main(test, "attack_plaintext", budget=60)
