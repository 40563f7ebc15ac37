#!/usr/bin/env python3
"""A manager listening on both families; one servant reaches it over IPv6 ([::1]), the other
over IPv4 (127.0.0.1). Each is listed at the address the manager saw it come from, so each
must dial the other at an address of the other family: servants listen on "::" with
IPv6-only off. Before issue 10 servants listened on 0.0.0.0 only, and bob was refused at
[::1] for ever.

  who       runs where                          does                      must see
  manager   [::]:P (both families)              --heartbeat 1             two joins
  alice     --manager [::1]:P (IPv6), listens ::  types a line, a sentinel  bob's, exactly once
  bob       --manager 127.0.0.1 (IPv4)          types a line, a sentinel  alice's, exactly once
  both      /peers and logs                     "connected to X at ADDR (observed)", the other
                                                listed at [::1]:PORT / 127.0.0.1:PORT
"""
import re
import socket

import harness
from harness import HEARTBEAT, STARTUP, TIMEOUT, Skip, main


async def start_dual_stack_manager(h):
    port = h.free_port()
    lo, hi = h.free_port_range()
    state_dir, key = h.state_dir("manager")
    args = ["--listen", "::", "--port", port, "--heartbeat", HEARTBEAT, "--timeout", TIMEOUT,
            "--port-range", "%d-%d" % (lo, hi), "--state-dir", state_dir, "--open"]
    m = await h.spawn("manager", "natmesh-manager", args)
    m.info.update(port=port, port_range=(lo, hi), state_dir=state_dir, key=key, fp=key.fp,
                  admission="open", heartbeat=HEARTBEAT, timeout=TIMEOUT)
    await h.expect(m.wait_log(r"listening on \[::\]:%d\b" % port, STARTUP),
                   "the manager listens on [::]:%d" % port)
    return m


async def test(h):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError as e:
        raise Skip("no IPv6 loopback here: %s" % e)
    if not h.secure:
        raise Skip("needs the programs of issue 9 or later")
    m = await start_dual_stack_manager(h)
    alice = await h.start_servant("alice", m, extra=["--manager", "[::1]:%d" % m.info["port"]])
    bob = await h.start_servant("bob", m)
    await h.wait_peer_count([alice, bob], 2)
    await h.expect(alice.wait_log(r"registered as alice \(\w+\), seen as ::1,", STARTUP),
                   "the manager saw alice come from ::1")
    await h.expect(bob.wait_log(r"registered as bob \(\w+\), seen as 127\.0\.0\.1,", STARTUP),
                   "the manager saw bob come from 127.0.0.1")

    # Each dials the other at the address the manager saw: alice dials bob over IPv4, bob
    # dials alice over IPv6, and the lines go both ways exactly once.
    _, lines = await h.chat_round([alice, bob], [alice, bob], "first")
    _, sentinels = await h.chat_round([alice, bob], [alice, bob], "sentinel")
    h.check_exactly_once([alice, bob], lines, "first")
    h.check_exactly_once([alice, bob], sentinels, "sentinel")
    for s in (alice, bob):
        await h.expect(s.wait_log(r"listening for peers on \[::\]:\d+ \(both IPv6 and IPv4\)", STARTUP),
                       "%s listens on both families" % s.name)
    await h.expect(bob.wait_log(r"connected to alice at \[::1\]:\d+ \(observed\)", STARTUP),
                   "bob connected to alice at [::1] (observed), bracketed")
    await h.expect(alice.wait_log(r"connected to bob at 127\.0\.0\.1:\d+ \(observed\)", STARTUP),
                   "alice connected to bob at 127.0.0.1 (observed)")

    # /peers: the other at its address of its family, bracketed for IPv6, with the path.
    rows = {r[1]: r for r in await bob.peers()}
    h.check_eq(rows["alice"][3], "[::1]", "bob's /peers lists alice at [::1]")
    h.check(re.search(r"direct via \[::1\]:\d+ \(observed\)", rows["alice"][5]) is not None,
            "bob's /peers: direct via [::1]:PORT (observed) (%s)" % rows["alice"][5])
    rows = {r[1]: r for r in await alice.peers()}
    h.check_eq(rows["bob"][3], "127.0.0.1", "alice's /peers lists bob at 127.0.0.1")
    h.check_eq(rows["alice"][3], "[::1]", "alice's /peers shows herself seen at [::1]")
    h.check(re.search(r"direct via 127\.0\.0\.1:\d+ \(observed\)", rows["bob"][5]) is not None,
            "alice's /peers: direct via 127.0.0.1:PORT (observed) (%s)" % rows["bob"][5])
    for s in (alice, bob):
        h.check(not s.find(r"cannot reach", "stderr"), "%s never failed to reach the other" % s.name)


if __name__ == "__main__":
    main(test, "dual_stack", budget=60)
