#!/usr/bin/env python3
"""A real servant joining an overlay whose list is past one page (256 entries) gets it in
pages and puts it together (issue 13, docs/protocol.md "Paged lists").

  setup    manager; 260 raw servants registered (heartbeat 2 s, timeout 120 s)
  join     alice (a real servant) registers: she gets 2 shared pages and her own, and
           logs a list of 261 peers
  then     bob joins: alice hears it by a delta (262 peers); alice and bob chat exactly
           once; natmesh-ctl status lists all 262
"""
import asyncio

from harness import MSG, STARTUP, RawServant, main

N = 260


async def test(h):
    m = await h.start_manager(heartbeat=2, timeout=120)
    # Ports of their own (they listen on none): the harness's range is a few dozen.
    raws = [RawServant(h, "raw%d" % i, listen=False, port=40000 + i) for i in range(N)]
    gate = asyncio.Semaphore(6)  # the manager takes 8 handshakes per address at once

    async def join(r):
        async with gate:
            f = await r.hello(m)
        h.check(f is not None and f[0] == MSG["welcome"], "%s welcomed" % r.name, fatal=False)
        await r.listening()
        r.start()
    await asyncio.wait_for(asyncio.gather(*(join(r) for r in raws)), 120)
    h.check(True, "%d raw servants registered" % N)

    alice = await h.start_servant("alice", m)
    await h.expect(alice.wait_log(r"peer list version \d+ \(%d peers\)" % (N + 1), STARTUP),
                   "alice put her paged list of %d together" % (N + 1))
    got = [f for f in raws[0].frames if f[0] == MSG["delta"]]
    h.check(len(got) >= 1, "the raw servants heard of alice by a delta")
    since = alice.mark("stderr")
    bob = await h.start_servant("bob", m)
    await h.expect(alice.wait_log(r"peer list version \d+ \(%d peers\)" % (N + 2), STARTUP, since),
                   "alice heard of bob by a delta")
    _, lines = await h.chat_round([alice, bob], [alice, bob], "paged")
    h.check_exactly_once([alice, bob], lines, "alice and bob chat")
    st = await h.status(m)
    h.check_eq(len(st.findall("servant")), N + 2, "natmesh-ctl status lists everyone")
    for r in raws:
        r.stop()


if __name__ == "__main__":
    main(test, "paged_list", budget=140)
