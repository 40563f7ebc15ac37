#!/usr/bin/env python3
"""Two managers follow a Redis Sentinel failover (issue 14, what it must show 3).

  step                                   who              must see
  1. a and b on sentinel://; s1, s2 on   every servant    one overlay of four; lines
     a, s3, s4 on b                                       everywhere, exactly once
  2. the primary is SIGKILLed            a, b             say the store is down; chat goes
                                                          on meanwhile, exactly once
  3. the sentinels promote the replica   a, b             up again on the new primary,
                                                          reconciled (a snapshot)
  4. s5 joins b after the failover       s1..s4           hear of it; nobody printed a leave
                                                          or a join of a known peer; lines
                                                          exactly once; natmesh-ctl on a
                                                          shows the new primary, up
"""
import harness
from harness import main
import store_fixture


async def test(h):
    rs = store_fixture.RedisSentinel(h)
    await rs.start()
    a, b = await store_fixture.start_managers(h, rs.url)
    for m in (a, b):
        await h.expect(m.wait_log(r"store: up, primary %s" % rs.primary.addr, 10),
                       "%s found the primary through the sentinels" % m.name)
    s1, s2, s3, s4 = four = await store_fixture.four_servants(h, a, b, "before the failover")

    since = {s: s.mark("stderr") for s in four}
    msince = {m: m.mark("stderr") for m in (a, b)}
    await rs.primary.kill()
    await h.wait_all([m.wait_log(r"store: .*serving the \d+ servants held here from memory", 10, msince[m])
                      for m in (a, b)], "both managers say the store is down")
    _, lines = await h.chat_round(four, four, "failing over")
    h.check_exactly_once(four, lines, "while the store fails over")
    await h.expect(rs.wait_switch(30), "the sentinels promote the replica")
    await h.wait_all([m.wait_log(r"store: up, primary %s" % rs.replica.addr, 30, msince[m]) for m in (a, b)],
                     "both managers follow the sentinels to the new primary")
    await h.wait_all([m.wait_log(r"store: overlay version \d+: 2 servants at other managers", 10, msince[m])
                      for m in (a, b)], "both managers reconcile with the new primary")

    s5 = await h.start_servant("s5", b)
    five = four + [s5]
    await h.wait_peer_count(five, 5, since=since)
    store_fixture.check_no_churn(h, four, since, ["s1", "s2", "s3", "s4"], "across the failover")
    _, lines = await h.chat_round(five, five, "after")
    h.check_exactly_once(five, lines, "after the failover")
    st = await h.status(a)
    store = st.find("store")
    h.check(store is not None, "natmesh-ctl status on a has the store")
    h.check_eq((store.get("state"), store.get("primary")), ("up", rs.replica.addr),
               "natmesh-ctl status on a: the store is up on the new primary")
    h.check_eq(sorted(x.get("name") for x in st.findall("servant")), ["s1", "s2", "s3", "s4", "s5"],
               "a lists all five")


if __name__ == "__main__":
    main(test, "managers_sentinel", budget=120)
