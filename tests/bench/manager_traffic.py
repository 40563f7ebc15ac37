#!/usr/bin/env python3
"""Benchmark: what the manager sends per heartbeat, and per join, as the overlay grows.

Issue 2: every join and leave reaches all remaining servants promptly, without each
servant re-downloading the whole list on every heartbeat, "so the manager's traffic per
heartbeat does not grow with the number of servants" (docs/protocol.md, "Keeping the list
current": list versions plus deltas; per heartbeat the manager sends one constant-size
heartbeat-ack).

It starts a real natmesh-manager (--heartbeat 1 --timeout 3, loopback, free port; --open
since issue 9) and fake servants speaking the real protocol from this process: each listens
on a real socket, says hello (its id, its name, that port) and listening, then heartbeats
once per heartbeat interval with the version it holds. Since issue 9 each has its own key
and its manager session is TLS 1.3 (harness.RawPeer): the bytes counted at the socket are
then TLS records (frame headers, TLS record headers and tags included). Like a real servant it applies a delta whose base is the
version it holds, and sends peers-request only when a delta's base or a heartbeat-ack's
version differs from the version it holds (or to start over after a gap). Every byte the
manager sends a fake servant is counted as it is read from the socket, frame headers
included; the frames are also counted by type.

For each N in --sizes (default 5, 50, 200; the overlay grows from one size to the next on
one manager) it measures:
  - steady state (no joins or leaves) over K heartbeat intervals (--intervals, default 5):
    the bytes the manager sent one observed servant (the first one, present at every N)
    per heartbeat, and the total it sent all N servants per heartbeat. A window starts and
    ends right after a heartbeat round, when every fake servant holds the ack for every
    heartbeat it sent, so the counts are exact, not sampled;
  - one join: the bytes each of the N existing servants receives when servant N+1 joins
    (it must be one delta), against the size of the full list the newcomer receives
    (N+1 entries, its own included).
It prints a table, the ratios, and "measure ..." lines (scripts/test.sh shows those after
ctest).

As a ctest (bench_manager_traffic) it asserts only what cannot flake, never a time:
  1. the observed servant's steady-state bytes per heartbeat at every N are within 10% of
     those at the smallest N (by design one ack, whose only variable part is the version
     number's digits), and no peers frame reached any servant in a steady window;
  2. a join sends each existing servant exactly one delta frame and nothing else (no peers
     frame), and the bytes it sends each of them at every N are within 10% of those at the
     smallest N.

Why it would fail if the manager re-sent the full list on every heartbeat: whether it sends
`peers` in place of (or besides) the ack, or acks a version other than the one the servant
holds so that the servant asks for the list, the observed servant receives one full list
per heartbeat, counted at the socket: about 175 B per entry, so some 8.9 KB per heartbeat at
N=50 against about 1 KB at N=5 -- a ratio near 9 where the check allows 1.10 -- and the
steady window sees peers frames, which check 1 forbids outright. A manager that published a
join by sending everyone the full list fails check 2 (a peers frame; 9,000 B against
1,124 B). All three were tried on a manager patched that way: each run failed (per-servant
ratio 9.00 for the first two; one peers frame per servant per join for the last).

A steady window in which the list version moved (a fake servant timed out on a machine so
loaded it missed its heartbeats) is not steady state: it is measured again, up to three
times, and then the benchmark fails rather than report a leave as heartbeat traffic (so a
manager that published a spurious change on every heartbeat fails too).

Run: python3 manager_traffic.py [--bindir BUILD/bin] [--sizes 5,50,200] [--intervals 5] [--keep]
"""
import asyncio
import contextlib
import os
import struct
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import CheckFailed, frame, random_id  # noqa: E402

MSG = harness.MSG
TYPE_NAME = {v: k for k, v in MSG.items()}
TOLERANCE = 0.10
ROUND_TIMEOUT = 10.0   # generous: a heartbeat round is milliseconds unless the box is stalled


class FakeServant:
    """A servant in the protocol's eyes, minus the chat: registers, heartbeats when told to,
    tracks the list version from peers and delta frames, counts what the manager sends."""

    def __init__(self, h, name, manager):
        self.h, self.name, self.manager = h, name, manager
        self.key = h.new_key(name) if h.secure else None
        self.id = self.key.id if self.key else random_id()
        self.version = None        # the list version it holds (None: no list yet)
        self.ids = set()           # ids in the list it holds, its own included
        self.requested = False     # a peers-request is outstanding
        self.rx_bytes = 0          # bytes read from the socket
        self.rx_frames = {}        # type -> [frames, bytes]
        self.hb_sent = 0
        self.acks = 0
        self.requests = 0
        self.last_peers_size = 0   # frame size of the last full list received
        self.cond = asyncio.Condition()
        self.closed = None         # why the session ended, once it has
        self._buf = b""
        self.server = self.conn = self.task = None

    async def _accept(self, r, w):
        w.close()

    async def register(self):
        """hello, welcome, listening; returns once it holds the full list."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.conn = await self.h.connect(self.manager, self.name, key=self.key, timeout=harness.STARTUP)
        self.task = asyncio.ensure_future(self._read_loop())
        self._send("hello", '<hello id="%s" name="%s" role="servant" port="%d" max-clients="0"/>'
                   % (self.id, self.name, self.port))
        await self.wait(lambda: MSG["welcome"] in self.rx_frames, "welcome")
        self._send("listening", '<listening port="%d"/>' % self.port)
        await self.wait(lambda: self.version is not None, "the full list")

    def _send(self, msg_type, payload=b""):
        self.conn.write(frame(msg_type, payload))

    def beat(self):
        self.hb_sent += 1
        self._send("heartbeat", '<heartbeat version="%d"/>' % (self.version or 0))

    def _request_list(self):
        if not self.requested:
            self.requested = True
            self.requests += 1
            self._send("peers-request")

    async def wait(self, pred, what, timeout=ROUND_TIMEOUT):
        async with self.cond:
            try:
                await asyncio.wait_for(self.cond.wait_for(lambda: pred() or self.closed), timeout)
            except asyncio.TimeoutError:
                raise harness.WaitTimeout("%s: no %s within %.0fs" % (self.name, what, timeout))
        if not pred():
            raise CheckFailed("%s: waiting for %s: %s" % (self.name, what, self.closed))

    async def _read_loop(self):
        why = "the manager closed the session"
        try:
            while True:
                data = await self.conn._recv(3600)
                if not data:
                    break
                self.rx_bytes = self.conn.rx_wire   # counted at the socket
                self._buf += data
                while len(self._buf) >= 8:
                    (length,) = struct.unpack(">I", self._buf[4:8])
                    if len(self._buf) < 8 + length:
                        break
                    t, payload = self._buf[3], self._buf[8:8 + length]
                    self._buf = self._buf[8 + length:]
                    self._on_frame(t, payload, 8 + length)
                async with self.cond:
                    self.cond.notify_all()
        except asyncio.CancelledError:
            why = "closed by the benchmark"
        except (ConnectionError, ValueError, ET.ParseError) as e:
            why = str(e) or type(e).__name__
        self.closed = why
        async with self.cond:
            self.cond.notify_all()

    def _on_frame(self, t, payload, size):
        c = self.rx_frames.setdefault(t, [0, 0])
        c[0] += 1
        c[1] += size
        if t == MSG["error"]:
            raise ConnectionError("%s: the manager sent error: %s" % (self.name, payload[:300]))
        if t not in (MSG["peers"], MSG["delta"], MSG["heartbeat-ack"]):
            return
        root = ET.fromstring(payload)
        if t == MSG["peers"]:
            self.version = int(root.get("version"))
            self.ids = {p.findtext("id") for p in root.findall("peer")}
            self.requested = False
            self.last_peers_size = size
        elif t == MSG["delta"]:
            if self.version is not None and int(root.get("base")) == self.version:
                self.version = int(root.get("version"))
                if root.find("peer") is not None:
                    self.ids.add(root.find("peer").findtext("id"))
                elif root.find("leave") is not None:
                    self.ids.discard(root.find("leave").get("id"))
            elif self.version is not None:
                self._request_list()
        else:
            self.acks += 1
            if self.version is not None and int(root.get("version")) != self.version:
                self._request_list()

    def snapshot(self):
        return {"bytes": self.rx_bytes, "version": self.version, "requests": self.requests,
                "frames": {t: tuple(c) for t, c in self.rx_frames.items()}}

    async def close(self):
        if self.conn:
            self.conn.close()
        if self.task:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        if self.server:
            self.server.close()


def frames_between(a, b):
    """type -> (frames, bytes) received between two snapshots."""
    out = {}
    for t, (n, size) in b["frames"].items():
        n0, s0 = a["frames"].get(t, (0, 0))
        if n - n0:
            out[t] = (n - n0, size - s0)
    return out


def fmt_frames(d):
    return ", ".join("%d %s (%d B)" % (n, TYPE_NAME.get(t, "0x%02x" % t), b)
                     for t, (n, b) in sorted(d.items())) or "nothing"


class Fleet:
    """The fake servants and the heartbeat: once per interval every registered fake sends a
    heartbeat and the round ends when each holds the ack for every heartbeat it sent."""

    def __init__(self, h, manager):
        self.h, self.manager = h, manager
        self.fakes = []
        self.rounds = 0
        self.round_snap = None          # snapshots taken right when a round ended
        self.round_cond = asyncio.Condition()
        self.ticker = None
        self.error = None

    async def add(self, name):
        f = FakeServant(self.h, name, self.manager)
        await f.register()
        self.fakes.append(f)
        return f

    def start(self):
        self.ticker = asyncio.ensure_future(self._tick_loop())

    async def _tick_loop(self):
        loop = asyncio.get_running_loop()
        try:
            while True:
                t0 = loop.time()
                fakes = list(self.fakes)
                for f in fakes:
                    f.beat()
                await asyncio.gather(*(f.wait(lambda f=f: f.acks >= f.hb_sent, "heartbeat-ack")
                                       for f in fakes))
                # Synchronous from the last ack to here: nothing else is counted in between.
                snap = {f: f.snapshot() for f in fakes}
                async with self.round_cond:
                    self.rounds += 1
                    self.round_snap = (self.rounds, snap)
                    self.round_cond.notify_all()
                await asyncio.sleep(max(0.0, harness.HEARTBEAT - (loop.time() - t0)))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # reported by the next wait_round
            self.error = e
            async with self.round_cond:
                self.round_cond.notify_all()

    async def wait_round(self, after):
        """The (round, snapshots) of the first round numbered > after."""
        async with self.round_cond:
            await asyncio.wait_for(self.round_cond.wait_for(
                lambda: self.error or self.rounds > after), ROUND_TIMEOUT + 2 * harness.HEARTBEAT)
        if self.error:
            raise CheckFailed("heartbeat round failed: %s" % self.error)
        return self.round_snap

    async def settle(self):
        """Every fake holds the newest list version and has no request outstanding."""
        want = max(f.version for f in self.fakes)
        await asyncio.gather(*(f.wait(lambda f=f: f.version == want and not f.requested,
                                      "list version %d" % want) for f in self.fakes))
        n = len(self.fakes)
        bad = [f.name for f in self.fakes if len(f.ids) != n]
        if bad:
            raise CheckFailed("fake servants holding a list of the wrong size (want %d): %s"
                              % (n, ", ".join(bad[:5])))
        return want

    async def steady(self, k, attempts=3):
        """Bytes over k whole heartbeat rounds with no change to the list."""
        for attempt in range(1, attempts + 1):
            await self.settle()
            r0, s0 = await self.wait_round(self.rounds)
            r1, s1 = await self.wait_round(r0 + k - 1)
            fakes = [f for f in self.fakes if f in s0 and f in s1]
            if len(fakes) == len(self.fakes) and \
               all(s0[f]["version"] == s1[f]["version"] for f in fakes):
                return r1 - r0, s0, s1
            self.h.note("steady window %d: the list changed or a servant joined meanwhile; "
                        "measuring again" % attempt)
        raise CheckFailed("no steady window (list unchanged over %d heartbeats) in %d attempts"
                          % (k, attempts))

    async def close(self):
        if self.ticker:
            self.ticker.cancel()
            with contextlib.suppress(BaseException):
                await self.ticker
        await asyncio.gather(*(f.close() for f in self.fakes), return_exceptions=True)


def thousands(x, decimals=0):
    return ("{:,.%df}" % decimals).format(x)


async def bench(h, sizes, k):
    m = await h.start_manager()
    fleet = Fleet(h, m)
    results = []
    try:
        fleet.start()
        for n in sizes:
            t_reg = time.monotonic()
            while len(fleet.fakes) < n:
                await fleet.add("bench-%04d" % len(fleet.fakes))
            version = await fleet.settle()
            h.note("N=%d: %d fake servants registered and current at list version %d (%.1fs)"
                   % (n, n, version, time.monotonic() - t_reg))

            # Steady state.
            rounds, s0, s1 = await fleet.steady(k)
            obs = fleet.fakes[0]
            obs_bytes = s1[obs]["bytes"] - s0[obs]["bytes"]
            total = sum(s1[f]["bytes"] - s0[f]["bytes"] for f in fleet.fakes)
            steady_frames = {}
            for f in fleet.fakes:
                for t, (cnt, b) in frames_between(s0[f], s1[f]).items():
                    c = steady_frames.setdefault(t, [0, 0])
                    c[0] += cnt
                    c[1] += b
            h.note("N=%d steady, %d heartbeats: observed %s received %s; all servants: %s"
                   % (n, rounds, obs.name, fmt_frames(frames_between(s0[obs], s1[obs])),
                      fmt_frames(steady_frames)))
            h.check(MSG["peers"] not in steady_frames,
                    "N=%d: no full list sent in steady state (%d heartbeats)" % (n, rounds),
                    fatal=False)

            # One join.
            existing = list(fleet.fakes)
            before = {f: f.snapshot() for f in existing}
            newcomer = await fleet.add("bench-%04d" % len(fleet.fakes))
            target = newcomer.version
            await asyncio.gather(*(f.wait(lambda f=f: f.version == target and not f.requested,
                                          "list version %d" % target) for f in existing))
            got = {f: frames_between(before[f], f.snapshot()) for f in existing}
            join_sizes = set()   # bytes each existing servant received for the join
            odd = []
            for f in existing:
                d = dict(got[f])
                d.pop(MSG["heartbeat-ack"], None)   # rounds go on meanwhile: not the join's
                join_sizes.add(sum(b for _, b in d.values()))
                if set(d) != {MSG["delta"]} or d[MSG["delta"]][0] != 1:
                    odd.append("%s: %s" % (f.name, fmt_frames(d)))
            h.check(not odd, "N=%d: the join reached each of the %d existing servants as one "
                    "delta and nothing else%s" % (n, len(existing),
                                                  "" if not odd else " -- " + "; ".join(odd[:5])),
                    fatal=False)
            delta = max(join_sizes) if join_sizes else 0
            full = newcomer.last_peers_size
            h.note("N=%d join: %s B to each existing servant (sizes seen: %s); "
                   "the newcomer's full list: %s B, %d entries"
                   % (n, delta, sorted(join_sizes), thousands(full), len(newcomer.ids)))
            results.append({"n": n, "rounds": rounds, "obs": obs_bytes / rounds,
                            "total": total / rounds, "per_servant_mean": total / rounds / n,
                            "delta": delta, "full": full, "full_entries": len(newcomer.ids)})
    finally:
        await fleet.close()
    return results


def report(h, results, k):
    base = results[0]
    print("#")
    print("# natmesh-manager traffic (--heartbeat %d --timeout %d), steady windows of %d "
          "heartbeats, bytes at the socket incl. frame headers%s" % (harness.HEARTBEAT,
                                                                   harness.TIMEOUT, k,
                                                                   " and TLS records" if h.secure else ""))
    print("# %6s  %20s  %16s  %17s  %14s  %22s" % ("N", "per-servant B/hb", "mean B/hb/srv",
                                                     "total B/hb", "join B/servant", "full list B (entries)"))
    for r in results:
        print("# %6d  %20.1f  %16.1f  %17s  %14s  %22s" % (
            r["n"], r["obs"], r["per_servant_mean"], thousands(r["total"], 1), thousands(r["delta"]),
            "%s (%d)" % (thousands(r["full"]), r["full_entries"])))
    print("#")
    for r in results[1:]:
        print("measure manager-traffic per-servant bytes per heartbeat: N=%d -> %.1f, N=%d -> %.1f, "
              "ratio %.2f" % (base["n"], base["obs"], r["n"], r["obs"], r["obs"] / base["obs"]))
        print("measure manager-traffic total bytes per heartbeat: N=%d -> %s, N=%d -> %s, "
              "ratio %.2f for %.0fx the servants"
              % (base["n"], thousands(base["total"], 1), r["n"], thousands(r["total"], 1),
                 r["total"] / base["total"], r["n"] / base["n"]))
        print("measure manager-traffic join, bytes to each existing servant: N=%d -> %s B, "
              "N=%d -> %s B, ratio %.2f"
              % (base["n"], thousands(base["delta"]), r["n"], thousands(r["delta"]),
                 r["delta"] / base["delta"] if base["delta"] else float("nan")))
    for r in results:
        print("measure manager-traffic join: delta %s B vs full list %s B at N=%d "
              "(a full list would cost %.1fx)" % (thousands(r["delta"]), thousands(r["full"]),
                                                  r["n"], r["full"] / r["delta"] if r["delta"] else
                                                  float("nan")))
    print("#", flush=True)
    for r in results[1:]:
        ratio = r["obs"] / base["obs"]
        h.check(abs(ratio - 1) <= TOLERANCE,
                "per-servant steady-state bytes per heartbeat at N=%d within %d%% of N=%d "
                "(%.1f vs %.1f, ratio %.2f)" % (r["n"], TOLERANCE * 100, base["n"], r["obs"],
                                               base["obs"], ratio), fatal=False)
        if base["delta"] and r["delta"]:
            dr = r["delta"] / base["delta"]
            h.check(abs(dr - 1) <= TOLERANCE,
                    "join: bytes to each existing servant at N=%d within %d%% of N=%d "
                    "(%d B vs %d B, ratio %.2f)"
                    % (r["n"], TOLERANCE * 100, base["n"], r["delta"], base["delta"], dr),
                    fatal=False)


def add_args(ap):
    ap.add_argument("--sizes", default="5,50,200", help="servant counts, ascending (default 5,50,200)")
    ap.add_argument("--intervals", type=int, default=5, help="heartbeats per steady window")

    def check(args):
        args.sizes = [int(x) for x in args.sizes.split(",")]
        if len(args.sizes) < 2 or args.sizes != sorted(set(args.sizes)) or args.sizes[0] < 1 \
                or args.intervals < 1:
            ap.error("--sizes: at least two ascending counts; --intervals >= 1")
    return check


async def run_bench(h, args):
    h.note("benchmark manager_traffic, sizes %s" % args.sizes)
    results = await bench(h, args.sizes, args.intervals)
    report(h, results, args.intervals)


if __name__ == "__main__":
    harness.main(run_bench, "manager_traffic", budget=120, add_args=add_args)
