#!/usr/bin/env python3
"""Decisions made once across managers (issue 14): a servant whose reporters are registered
with different managers is judged once, by the manager holding it, and gets one relay.

  who                    where   does                          must see
  alice                  b       a servant                     judged suspicious once, by b;
                                                               one relay assignment
  relay1                 b       a dedicated relay             serves alice
  r1, r2                 a       raw servants complaining      their complaints counted by b
  r3                     b       about alice                   (a never judges alice)
  bob                    a       a servant                     sees alice relayed via relay1

Without the shared store each manager would count only its own reporters: a would see two
complaints and never a quorum of the overlay, b one.
"""
import asyncio

import harness
from harness import DELIVERY, MSG, RawServant, main
import store_fixture


async def test(h):
    redis = await store_fixture.RedisServer(h).start()
    _, relay_key = h.state_dir("relay1")
    a, b = await store_fixture.start_managers(h, redis.url, relay_keys=[relay_key.fp])
    await h.start_servant("relay1", b, prog="natmesh-relay")
    alice = await h.start_servant("alice", b, extra=["--no-reverse"])
    bob = await h.start_servant("bob", a)
    raws = []
    for name, m in (("r1", a), ("r2", a), ("r3", b)):
        r = RawServant(h, name)
        await r.register(m)
        r.start()
        raws.append(r)
    await h.wait_peer_count([alice, bob], 6)
    for r in raws:
        r.complain(alice.info["id"])

    await h.expect(b.wait_log(r"verdict: alice \(\S+\) is suspicious", 20), "b (alice's manager) judges alice")
    await h.expect(b.wait_log(r"complaint: r1 cannot reach alice", 5),
                   "b counted a complaint of r1, registered with a")
    await h.expect(alice.wait_log(r"pulling from relay relay1", 10), "alice pulls from a relay")
    await h.expect(bob.wait_log(r"peer list version \d+", 5), "bob follows the list")
    # Complaints go on after the verdict (each reporter sends ten more, two seconds' worth of
    # heartbeats): still one verdict, one assignment.
    goal = {r: r.sent_complaints + 10 for r in raws}

    async def ten_more():
        while any(r.sent_complaints < goal[r] for r in raws):
            await asyncio.sleep(0.2)  # the reporters' own pace: they send one every 0.2 s
    await h.expect(ten_more(), "every reporter sent ten more complaints after the verdict")
    verdicts_b = b.find(r"verdict: alice \(", "stderr")
    verdicts_a = a.find(r"verdict: alice \(", "stderr")
    # The pair path may come first (one reporter past the threshold), then the verdict:
    # both name the same relay.
    relays_b = {m.group(1) for m in b.find(r"relay: alice pulls from \S+ (\S+)", "stderr")}
    relays_a = a.find(r"relay: alice pulls from", "stderr")
    h.check_eq((len(verdicts_b), len(verdicts_a)), (1, 0), "alice judged once, by b, never by a")
    h.check_eq((relays_b, len(relays_a)), ({"relay1"}, 0), "alice got one relay (relay1), from b only")
    st = await h.status(a)
    got = [(s.get("state"), s.get("relay_name") or s.get("relay-name") or s.get("relay")) for s in st.findall("servant")
           if s.get("name") == "alice"]
    h.note("alice in a's status: %s" % got)
    h.check(got and got[0][0] in ("relayed", "suspicious"), "a's status shows alice relayed (%s)" % got)

    # A flood: r4 (on a) sends 300 complaints about alice back to back. Each one a passes on
    # is a write to the store every manager reads; a passes on at most 64 per heartbeat
    # interval of one servant and says so, so the bounded change log keeps the real changes.
    flooder = RawServant(h, "r4")
    await flooder.register(a)
    flooder.start()
    since = a.mark("stderr")
    for _ in range(300):
        await flooder.conn.send_frame("complaint", '<complaint accused="%s" reason="refused"/>' % alice.info["id"])
    await h.expect(a.wait_log(r"r4 complains faster than 64 a heartbeat", 10, since),
                   "a stops passing r4's complaints on past 64 a heartbeat (and says so)")
    key = (await redis.cli("--scan", "--pattern", "nm:*:log")).split()[0]
    # a's writes are asynchronous: read the log until what reached it stops growing (at
    # most 5 s; a busy manager may not have sent the last ones when it logs the cap).
    passed, before = 0, -1
    for _ in range(50):
        passed = (await redis.cli("XRANGE", key, "-", "+")).split().count(flooder.id)
        if passed > 0 and passed == before:
            break
        before = passed
        await asyncio.sleep(0.1)
    h.note("r4's complaints in the change log: %d of 300" % passed)
    h.check(0 < passed <= 128, "at most 64 a heartbeat of r4's 300 complaints reached the store (%d)" % passed)
    for r in raws + [flooder]:
        r.stop()


if __name__ == "__main__":
    main(test, "managers_verdict")
