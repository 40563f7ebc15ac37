#!/usr/bin/env python3
"""Changes within the delta window go out as ONE delta, encoded once and sent once to each
session (issue 13): a burst of joins costs one delta per window, not one per join.

  setup    manager with --delta-window-ms 1000 and --metrics; 3 raw observers registered and
           reading what the manager sends
  burst    K raw newcomers register at once (within a window or a few)
  then     the manager encoded at most K/5 deltas for the K joins (1 on a quiet host) (natmesh_manager_
           delta_encodes_total); each observer received exactly that many delta frames,
           which together carry the K joins in order; every observer's list holds all
           3 + K; every newcomer got a whole list

The old manager sent one delta per change: K delta frames to each observer.
"""
import asyncio
import re
import urllib.request
import xml.etree.ElementTree as ET

from harness import DELIVERY, MSG, RawServant, main

K = 30
WINDOW_MS = 1000


def metric(text, name):
    m = re.search(r"^%s(?:\{[^}]*\})? (\d+)" % re.escape(name), text, re.M)
    return int(m.group(1)) if m else None


async def scrape(port):
    loop = asyncio.get_running_loop()
    def get():
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        with opener.open("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            return r.read().decode()
    return await loop.run_in_executor(None, get)


def deltas_of(frames):
    return [f for f in frames if f[0] == MSG["delta"]]


async def test(h):
    mport = h.free_port()
    # A long timeout: on a loaded host the test's own handshakes may starve its heartbeats.
    m = await h.start_manager(heartbeat=2, timeout=60,
                              extra=["--delta-window-ms", str(WINDOW_MS), "--metrics", "127.0.0.1:%d" % mport])
    observers = [RawServant(h, "obs%d" % i, listen=False, port=0) for i in range(3)]
    for o in observers:
        await o.register(m)
        o.start()
    await asyncio.sleep(WINDOW_MS / 1000 * 1.5)  # their own joins are out
    before = await scrape(mport)
    e0 = metric(before, "natmesh_manager_delta_encodes_total")
    h.check(e0 is not None, "the manager counts its delta encodes")
    seen0 = [len(deltas_of(o.frames)) for o in observers]

    newcomers = [RawServant(h, "new%d" % i, listen=False, port=0) for i in range(K)]
    # The manager takes a few handshakes per address at once (8): they queue for that, and
    # none waits for its list before the next says hello.
    gate = asyncio.Semaphore(6)

    async def join(n):
        async with gate:
            f = await n.hello(m)
        h.check(f is not None and f[0] == MSG["welcome"], "%s welcomed" % n.name)
        n.port = int(ET.fromstring(f[1]).get("port"))
        return await n.listening()
    lists = await asyncio.wait_for(asyncio.gather(*(join(n) for n in newcomers)), DELIVERY * 4)
    await asyncio.sleep(WINDOW_MS / 1000 * 1.5)
    after = await scrape(mport)
    encodes = metric(after, "natmesh_manager_delta_encodes_total") - e0
    # Registrations may straddle a few windows on a loaded host; one delta per join (the old
    # manager's 30) never passes.
    h.check(1 <= encodes <= K // 5, "%d joins within a few windows: %d delta encodes (at most %d)" % (K, encodes, K // 5))
    for o, s0 in zip(observers, seen0):
        got = deltas_of(o.frames)[s0:]
        h.check_eq(len(got), encodes, "%s received one delta frame per encode" % o.name)
        joined = sum(len(re.findall(rb"<peer>", f[1])) for f in got)
        h.check_eq(joined, K, "%s: those deltas carry the %d joins" % (o.name, K))
        h.check_eq(len(o.peers), 3 + K, "%s's list holds everyone" % o.name)
    h.check(all(n.name in lst.values() for n, lst in zip(newcomers, lists)),
            "every newcomer got a whole list with itself in it")
    h.check(min(len(lst) for lst in lists) >= 4, "every newcomer's list holds at least the observers and itself")
    for x in observers + newcomers:
        x.stop()


if __name__ == "__main__":
    main(test, "delta_burst", budget=60)
