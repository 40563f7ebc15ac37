#!/usr/bin/env python3
"""Candidates and the dual-stack manager (issue 10), seen from the wire.

  step  what the test does                                    must see
  1     a raw servant says listening with two local           its list entry has them as
        addresses (10.1.2.3, 2001:db8::7)                     <cand kind="local"> on its port,
                                                              in order; 127.0.0.1 (observed,
                                                              no candidate) is not one
  2     a second servant joins                                it gets the same <cand>s
  3     the first says listening again from a new session     the others get a delta with the
        with other local addresses (a re-listening)           new candidates
  4     a manager started with --listen :: (the default)      it logs "listening on [::]:P";
        gets one servant over ::1 and one over 127.0.0.1      the v6 one is "[::1]:P" in its
                                                              log and in natmesh-ctl, the v4
                                                              one plain 127.0.0.1 (never
                                                              ::ffff:127.0.0.1)
"""
import asyncio
import socket
import xml.etree.ElementTree as ET

import harness
from harness import MSG, STARTUP, RawServant, hello_doc, main


def cands(peer):
    return [(c.get("kind"), c.get("ip"), int(c.get("port"))) for c in peer.findall("cand")]


async def listening_with(rs, addrs):
    body = "".join('<addr ip="%s"/>' % a for a in addrs)
    await rs.conn.send_frame("listening", '<listening port="%d">%s</listening>' % (rs.port, body))
    while True:
        f = await rs.conn.read_frame()
        if not f:
            raise harness.CheckFailed("%s: the manager closed the session" % rs.name)
        if f[0] == MSG["error"]:
            raise harness.CheckFailed("%s: the manager said %s" % (rs.name, f[1]))
        if f[0] == MSG["peers"]:
            rs._on_list(f[0], f[1])
            return


async def test(h):
    m = await h.start_manager()
    # 1. local addresses become candidates, in the servant's order, on its listening port
    n1 = RawServant(h, "neighbour")
    f = await n1.hello(m)
    h.check(f and f[0] == MSG["welcome"], "neighbour welcomed")
    await listening_with(n1, ["10.1.2.3", "2001:db8::7"])
    n1.start()
    mine = n1.peers[n1.id]
    h.check_eq(cands(mine), [("local", "10.1.2.3", n1.port), ("local", "2001:db8::7", n1.port)],
               "the entry's candidates: the locals in order (127.0.0.1 observed is none)")
    h.check_eq((mine.findtext("ip"), int(mine.findtext("port"))), ("127.0.0.1", n1.port),
               "the primary address is still the observed one")

    # 2. another servant sees them
    n2 = RawServant(h, "other")
    await n2.register(m)
    n2.start()
    h.check_eq(cands(n2.peers[n1.id]), cands(mine), "a peer gets the same candidates")

    # 3. a new session of the same servant with other interfaces: a delta with the new ones
    n1b = RawServant(h, "neighbour", key=n1.key, port=n1.port, listen=False)
    f = await n1b.hello(m)
    h.check(f and f[0] == MSG["welcome"], "neighbour's new session welcomed")
    v0 = n2.version
    await listening_with(n1b, ["192.168.7.9"])
    await h.expect(_wait(lambda: n2.version > v0 and
                         cands(n2.peers.get(n1.id, ET.Element("peer"))) == [("local", "192.168.7.9", n1.port)]),
                   "the others get a delta with the new candidates")

    # 4. dual stack: --listen :: takes both families
    if not _has_v6_loopback():
        h.note("no ::1 here: the dual-stack part is skipped")
        return
    port = h.free_port()
    lo, hi = h.free_port_range()
    state_dir, key = h.state_dir("manager6")
    m6 = await h.spawn("manager6", "natmesh-manager",
                       ["--listen", "::", "--port", port, "--heartbeat", harness.HEARTBEAT,
                        "--timeout", harness.TIMEOUT, "--port-range", "%d-%d" % (lo, hi),
                        "--state-dir", state_dir, "--open"])
    m6.info.update(port=port, state_dir=state_dir, key=key, fp=key.fp, admission="open")
    await h.expect(m6.wait_log(r"listening on \[::\]:%d, both families" % port, STARTUP),
                   "the manager listens on [::]:%d, both families" % port)
    ids = {}
    for name, host in (("six", "::1"), ("four", "127.0.0.1")):
        k = h.new_key("raw-" + name)
        c = await h.connect(m6, "%s (manager session)" % name, key=k, host=host)
        await c.send_frame("hello", hello_doc(k.id, name, 0))
        f = await c.read_frame()
        h.check(f and f[0] == MSG["welcome"], "%s welcomed over %s" % (name, host))
        w = ET.fromstring(f[1])
        h.check_eq(w.get("ip"), host, "%s's welcome says the address it came from" % name)
        await c.send_frame("listening", '<listening port="%s"/>' % w.get("port"))
        ids[name] = (c, int(w.get("port")))
    p6, p4 = ids["six"][1], ids["four"][1]
    await h.expect(m6.wait_log(r"joined: six \([0-9a-f]+\) at \[::1\]:%d\b" % p6), "logged as [::1]:%d" % p6)
    await h.expect(m6.wait_log(r"joined: four \([0-9a-f]+\) at 127\.0\.0\.1:%d\b" % p4),
                   "the IPv4 one logged as plain 127.0.0.1:%d" % p4)
    h.check(not m6.find(r"::ffff:", "stderr"), "no IPv4-mapped address in the manager's log")
    rc, out, _ = await h.ctl(m6, "status")
    h.check(rc == 0 and "[::1]:%d" % p6 in out and "127.0.0.1:%d" % p4 in out,
            "natmesh-ctl shows [::1]:%d and 127.0.0.1:%d" % (p6, p4))


def _has_v6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


async def _wait(pred, timeout=harness.DELIVERY):
    """pred holds: n2's list is kept current by its reader task; checked as frames come."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise harness.WaitTimeout("condition not met within %.0fs" % timeout)
        await asyncio.sleep(0.05)
    return True


if __name__ == "__main__":
    main(test, "candidates", budget=60)
