#!/usr/bin/env python3
"""The manager's store (src/manager/store.c, issue 14) against real Redis servers.

tests/unit/store_check does the store's side and checks what its hooks saw; this test runs
the servers (store_fixture: free ports on 127.0.0.1, never 6379) and does to them what the
store must survive, on store_check's cues:
  url       the URL parser: IP literals only, sentinel://.../MASTER
  basic     put, leave (only by the holder), renew (missing, moved), reap (one expiry, one
            leave, however many managers reap), complain, announce, a newcomer's snapshot
  gap       a change lost from the stream (XTRIM): a snapshot, then the stream goes on
  bounds    MGR_STORE_INFLIGHT_MAX puts in flight, then -ENOBUFS; every one read back, in
            order, no gap; a renew of 5000 ids as two scripts
  admin     SCRIPT FLUSH: the scripts go as EVAL; REPLICAOF: READONLY, down once, ROLE
            refused until REPLICAOF NO ONE
  stall     redis-server SIGSTOPped: the watchdog (no reply and no byte of one in 15 s) says down; SIGCONT: up
  restart   redis-server killed: on_down once; started again (empty): a snapshot at 0
  admission admission facts: each new one published once, a revocation wins over the record
            and over later ones, a newcomer reads them all at its snapshot
  failover  primary + replica + 3 sentinels; the primary SIGKILLed: the store follows the
            sentinels to the promoted replica (failovers 1, the data still there)
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import STARTUP, main  # noqa: E402
from store_fixture import RedisSentinel, RedisServer  # noqa: E402


async def run_check(h, args, mode, url=None, budget=60.0):
    argv = [mode] + ([url] if url else [])
    prog = os.path.abspath(args.store_check)
    p = await h.spawn("store_check-%s" % mode, prog, argv, expect_exit=True)
    return p


async def finish(h, p, what, timeout=60.0):
    rc = await p.wait_exit(timeout)
    await p.stop()
    for line in p.lines("stderr"):
        if "FAIL" in line or "got" in line or "expected" in line:
            h.note("%s: %s" % (p.name, line))
    h.check_eq(rc, 0, "%s (%s)" % (what, (p.lines()[-1:] or ["no output"])[0]))


async def test(h, args):
    await finish(h, await run_check(h, args, "url"), "store URLs parsed as the spec says")

    r = await RedisServer(h).start()
    await finish(h, await run_check(h, args, "basic", r.url),
                 "put/leave/renew/reap/complain/announce/snapshot against redis-server")

    r7 = await RedisServer(h, name="redis-admission").start()
    await finish(h, await run_check(h, args, "admission", r7.url),
                 "admission facts: published once, revocations win, a newcomer reads them all")

    r8 = await RedisServer(h, name="redis-mesh").start()
    await finish(h, await run_check(h, args, "mesh", r8.url),
                 "the mesh's lease: one leader, fenced writes, sets on the log and in snapshots, "
                 "the lease passing on")

    r2 = await RedisServer(h, name="redis-gap").start()
    await finish(h, await run_check(h, args, "gap", r2.url), "a gap in the stream: a snapshot")

    r6 = await RedisServer(h, name="redis-bounds").start()
    await finish(h, await run_check(h, args, "bounds", r6.url),
                 "65536 in flight then ENOBUFS, all read back in order; renew in batches", 120)

    r4 = await RedisServer(h, name="redis-admin").start()
    await finish(h, await run_check(h, args, "admin", r4.url),
                 "SCRIPT FLUSH (EVAL fallback), demoted to a replica and back")

    r5 = await RedisServer(h, name="redis-stall").start()
    p = await run_check(h, args, "stall", r5.url)
    await h.expect(p.wait_for_line(r"^up$", STARTUP), "the store is up")
    r5.proc.signal(signal.SIGSTOP)
    hit = await h.expect(p.wait_for_line(r"^down after (\d+) ms$", 30), "the server frozen: the watchdog")
    h.note("down after %s ms" % hit.group(1))
    r5.proc.signal(signal.SIGCONT)
    await h.expect(p.wait_for_line(r"^up again$", 30), "the server thawed: up again")
    await finish(h, p, "stall: on_down once, back up, writes again")

    r3 = await RedisServer(h, name="redis-restart").start()
    p = await run_check(h, args, "restart", r3.url)
    await h.expect(p.wait_for_line(r"^up$", STARTUP), "the store is up")
    await r3.kill()
    await h.expect(p.wait_for_line(r"^down$", 20), "the server killed: on_down")
    await r3.start()
    await h.expect(p.wait_for_line(r"^up again$", 30), "the server back: reconnected, snapshot")
    await finish(h, p, "restart: on_down once, one reconnect, writes again")

    rs = await RedisSentinel(h).start()
    h.note("sentinels up: %s" % rs.url)
    p = await run_check(h, args, "failover", rs.url)
    hit = await h.expect(p.wait_for_line(r"^up (\S+)$", STARTUP), "the store is up through Sentinel")
    h.check_eq(hit.group(1), rs.primary.addr, "the sentinels' primary")
    await rs.primary.kill()
    await h.expect(p.wait_for_line(r"^down$", 20), "the primary SIGKILLed: on_down")
    await h.expect(rs.wait_switch(30), "the sentinels promote the replica")
    hit = await h.expect(p.wait_for_line(r"^up again (\S+)$", 60), "the store follows the failover")
    h.check_eq(hit.group(1), rs.replica.addr, "the new primary is the replica")
    await finish(h, p, "failover: on_down once, failovers 1, the data kept, writes again")


def add_args(ap):
    ap.add_argument("--store-check", required=True, help="the store_check program")


if __name__ == "__main__":
    main(test, "store", budget=180.0, add_args=add_args)
