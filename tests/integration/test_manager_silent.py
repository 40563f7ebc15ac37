#!/usr/bin/env python3
"""A manager that goes silent without closing the connection (its host vanished, a link
died) is given up on: the servant notices within the heartbeat timeout and reconnects.
The same for a manager that accepts the connection but never welcomes.

  round 1   a fake manager registers alice (heartbeat 1 s, timeout 3 s), then reads her
            heartbeats and answers nothing: alice must log "manager silent" no sooner than
            the timeout allows and open a new connection
  round 2   the fake accepts and says nothing at all: alice gives up on the welcome and
            connects again
  finally   a real manager on the same port: alice registers and chats with bob
"""
import asyncio
import time

from harness import DELIVERY, main
from test_hostile_manager_link import FakeManager, real_manager_takes_over, register


async def drain(c):
    while await c.read_frame(3600) is not None:
        pass


async def test(h):
    fake = FakeManager(h)
    await fake.start()
    alice = await h.start_servant("alice", fake.port, wait_registered=False, manager_key=fake.fp)
    if h.secure:
        fake.keys[alice.id] = alice.info["key"].pub_hex

    c1 = await fake.next()
    await register(h, c1, h.free_port(), fake.keys)
    hit = await h.expect(alice.wait_log(r"registered as alice\b"), "alice registered with the fake manager")
    registered = hit.line.t
    reader = asyncio.ensure_future(drain(c1))  # take her heartbeats, answer none, never close
    hit = await h.expect(alice.wait_log(r"manager \(127\.0\.0\.1:\d+\) closed: manager silent for 3 s", 10),
                         "alice gives up on the silent manager")
    waited = hit.line.t - registered
    h.check(2.5 <= waited <= 6.0, "she waited about the 3 s timeout (%.1f s)" % waited)
    c2 = await h.expect(fake.next(DELIVERY), "alice connects again")
    reader.cancel()

    # Round 2: accept and say nothing, not even a welcome.
    t0 = time.monotonic()
    reader = asyncio.ensure_future(drain(c2))
    await h.expect(alice.wait_log(r"no welcome from the manager in time", 15),
                   "alice gives up on a manager that never welcomes her")
    await h.expect(fake.next(DELIVERY), "and connects again (%.1f s later)" % (time.monotonic() - t0))
    reader.cancel()

    await real_manager_takes_over(h, fake, alice, "after the silent manager")


if __name__ == "__main__":
    main(test, "manager_silent", budget=90)
