#!/usr/bin/env python3
"""Attack (issue 9): a servant trusts whatever answers at the manager's address.

Before issue 9 a servant registered with anything that spoke the protocol at the manager's
address, and took its peer list (whom to send every line to) on trust. Now a servant knows
the manager's key before it connects (--manager-key, or the invite) and refuses any other.

  who       runs where                              must see
  manager   127.0.0.1:M (the real one; its key is   -
            what alice is told to expect)
  fake      127.0.0.1:F, a Python manager with its  no hello from alice, ever
            own key: welcomes any hello, sends a
            list naming mallory as a peer
  alice     --manager-port F, pinned to M's key     never registers; logs that the manager
                                                    at F presented another key (naming the
                                                    key she expected); keeps refusing on every
                                                    retry (3 connections)
  plain     127.0.0.1:G, the same fake in plain     no hello from bob (3 connections)
            TCP (the attacker before issue 9)
  bob       --manager-port G, pinned to M's key     never registers

Before issue 9 this fails: alice registers with the fake. Recorded on main at b96444a:
"not ok 5 - the fake manager never received a hello from alice (it did: b'<hello
id="01a8c2b62ef315d4" name="alice" role="servant" port="0" max-clients="8"/>')", "not ok 6 -
alice never registered with the fake manager".
"""
import asyncio
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import MSG, STARTUP, main, random_id  # noqa: E402

CONNECTIONS = 3


def peer_xml(id_, name, ip, port, key_hex=None, me=False):
    key = "<key>%s</key>" % key_hex if key_hex else ""
    return ("<peer><id>%s</id><name>%s</name><ip>%s</ip><port>%d</port>%s<role>servant</role>"
            "<state>direct</state><mapping>none</mapping><me>%s</me></peer>"
            % (id_, name, ip, port, key, "TRUE" if me else "FALSE"))


async def test(h):
    m = await h.start_manager()
    fake_key = h.new_key("fake-manager")
    mallory_key = h.new_key("mallory")
    hellos = []
    conns = asyncio.Queue()

    async def fake(c):
        """Plays the manager's side of registration for whatever says hello."""
        f = await c.read_frame(60)
        if not f or f[0] != MSG["hello"]:
            return
        hellos.append(f[1])
        sid = re.search(rb'id="([0-9a-f]{16})"', f[1]).group(1).decode()
        port = h.free_port()
        await c.send_frame("welcome", '<welcome id="%s" ip="127.0.0.1" port="%d" heartbeat="1" timeout="3"/>'
                           % (sid, port))
        while f and f[0] != MSG["listening"]:
            f = await c.read_frame(60)
        mallory = peer_xml(mallory_key.id if h.secure else random_id(), "mallory", "127.0.0.1", h.free_port(),
                           mallory_key.pub_hex if h.secure else None)
        await c.send_frame("peers", '<peers version="1">%s%s</peers>' %
                           (peer_xml(sid, "alice", "127.0.0.1", port, None, True), mallory))
        while await c.read_frame(3600):
            pass

    _, fport = await h.serve(fake, fake_key, label="fake manager", on_accept=conns.put_nowait)
    alice = await h.start_servant("alice", fport, wait_registered=False,
                                  manager_key=m.info.get("fp"))
    for i in range(CONNECTIONS):
        await h.expect(asyncio.wait_for(conns.get(), STARTUP), "alice connects to the fake manager (%d)" % (i + 1))
    h.check(not hellos, "the fake manager never received a hello from alice%s" %
            (" (it did: %s)" % hellos[0][:120] if hellos else ""), fatal=False)
    h.check(not alice.find(r"registered as alice\b", "stderr"), "alice never registered with the fake manager",
            fatal=False)
    if h.secure:
        hit = await h.expect(alice.wait_log(r"manager at 127\.0\.0\.1:%d presented key %s, but .*%s.*refusing" %
                                            (fport, fake_key.fp, m.info["fp"])),
                             "alice says the manager presented another key than the one she expects, naming both")
        h.note("alice: %s" % hit.line.text)
    h.check(not hellos and not alice.find(r"registered as alice\b", "stderr"),
            "alice refused the fake manager")
    if not h.secure:
        return

    # The same fake in plain TCP (the attacker of before issue 9): bob does not even say
    # hello in clear.
    pconns = asyncio.Queue()

    async def plain_fake(c):
        head = await c.reader.read(2)
        if head == b"NM":  # a frame in clear: play along
            c._buf = head
            await fake(c)
        # else a TLS ClientHello: a plaintext manager cannot answer it, and hangs up

    _, pport = await h.serve(plain_fake, None, label="plaintext fake manager", on_accept=pconns.put_nowait)
    bob = await h.start_servant("bob", pport, wait_registered=False, manager_key=m.info["fp"])
    for i in range(CONNECTIONS):
        await h.expect(asyncio.wait_for(pconns.get(), STARTUP),
                       "bob connects to the plaintext fake manager (%d)" % (i + 1))
    h.check(not hellos and not bob.find(r"registered as bob\b", "stderr"),
            "bob never said hello to the plaintext fake, never registered")


if __name__ == "__main__":
    main(test, "attack_fake_manager", budget=60)
