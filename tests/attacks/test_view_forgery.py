#!/usr/bin/env python3
"""Attack (issue 13, views): lines forged in the name of servants outside the target's view.

Above --mesh-above a servant lists only its view (itself, its neighbours, relays), so a line
from anyone else is verified by the key and membership certificate it carries (the manager
signed (id, key, name) at welcome; docs/protocol.md, "Membership certificates"). Here the
manager makes a bounded mesh of degree 2 from the first servant: alice (a real servant) has
two neighbours, and six raw servants register; mallory is one of them in alice's view (so
alice takes her peer connection), bob one outside it (mallory holds his certificate: a
colluding member, or lines she forwards). On one connection to alice mallory sends:

  a. a made-up key and a made-up certificate (the line itself signed by that key);
  b. bob's real key and certificate on a line whose text was altered after bob signed it;
  c. bob's real key and certificate under another name ("alice");
  d. bob's real certificate with mallory's key;
  f. a certificate of mallory's own "manager" (a key she made) for a key she made, the line
     naming that key as its signer (signer=, since several managers share an overlay): a
     receiver trusts a signer only when it pins that manager;
  e. then bob's own line, as he signed it: the fence, shown as "bob: ..." (alice read
     and verified everything before it by then).

  must see: alice shows the fence exactly once and none of a-d.

Before views (int13) servants listed everyone and a line from an unlisted origin only
waited to be dropped; no line carried a certificate. Without the certificate check (a
receiver that took key= at its word) a, c and d would be shown.
"""
import os
import struct
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import DELIVERY, RawServant, frame, main, random_id, xml_escape  # noqa: E402

FORGED = "forged outside the view"

_hello_doc = harness.hello_doc


def hello_views(*args, **kwargs):
    """The raw servants say views="1", as servants that verify certificates do: they get
    views (alice does as a natmesh-servant)."""
    return _hello_doc(*args, **kwargs).replace("/>", ' views="1"/>')


harness.hello_doc = hello_views


def line(origin, name, seq, text, key_hex, cert_hex, sig, signer=None):
    extra = ' signer="%s"' % signer if signer else ""
    return ('<chat origin="%s" name="%s" epoch="1" seq="%d" sig="%s" key="%s" cert="%s"%s>%s</chat>' %
            (origin, name, seq, sig, key_hex, cert_hex, extra, xml_escape(text)))


def member_bytes(origin, pub_hex, name):
    """nm_member's canonical bytes (docs/protocol.md, "Membership certificates")."""
    tag = b"natmesh-member-v1"
    raw = bytes.fromhex(pub_hex)
    return b"".join([struct.pack(">I", len(tag)), tag, struct.pack(">I", len(origin)), origin.encode(),
                     struct.pack(">I", len(raw)), raw, struct.pack(">I", len(name.encode())), name.encode()])


async def test(h):
    if not h.secure:
        raise harness.Skip("needs the programs with keys")
    m = await h.start_manager(extra=("--mesh-above", "0", "--mesh-degree", "2"))
    alice = await h.start_servant("alice", m)
    raws, certs = [], {}
    for i in range(6):
        r = RawServant(h, "raw%d" % i)
        f = await r.hello(m)
        h.check(f is not None and f[0] == harness.MSG["welcome"], "raw%d welcomed" % i)
        w = ET.fromstring(f[1])
        h.check(w.get("cert") is not None and w.get("key") == r.key.pub_hex and w.get("name") == r.name
                and w.get("manager-key") == m.info["key"].pub_hex,
                "raw%d's welcome carries its membership certificate over its key and name, and the manager's key" % i)
        certs[r.id] = w.get("cert")
        await r.listening()
        r.start()
        raws.append(r)
    # alice's view: herself and her two neighbours (at least one of them raw).
    view = set()
    for _ in range(20):
        rows = await alice.peers()
        view = {row[2] for row in rows}
        if len(view) >= 3:
            break
        await harness.asyncio.sleep(0.3)
    inside = [r for r in raws if r.id in view]
    outside = [r for r in raws if r.id not in view]
    h.note("alice's view: %d entries of 7 servants" % len(view))
    h.check(inside and outside, "one raw servant in alice's view (mallory), one outside (bob)")
    h.check(len(view) < 7, "alice holds fewer entries than the overlay (%d of 7)" % len(view))
    mallory, bob = inside[0], outside[0]
    port = [row for row in rows if row[0]][0][4]

    c = await h.connect(port, "mallory", key=mallory.key)
    data = frame("peer-hello", '<peer-hello id="%s" name="%s"/>' % (mallory.id, mallory.name))
    stranger = h.stranger_key()
    made_up = mallory.key.sign(b"not a membership certificate").hex()
    t = FORGED + " (a: made-up certificate)"
    data += frame("chat", line(stranger.id, "bob", 1, t, stranger.pub_hex, made_up,
                               stranger.sign_line(stranger.id, 1, 1, t)))
    t = FORGED + " (b: altered text)"
    data += frame("chat", line(bob.id, bob.name, 2, t, bob.key.pub_hex, certs[bob.id],
                               bob.key.sign_line(bob.id, 1, 2, "what bob really said")))
    t = FORGED + " (c: another name)"
    data += frame("chat", line(bob.id, "alice", 3, t, bob.key.pub_hex, certs[bob.id],
                               bob.key.sign_line(bob.id, 1, 3, t)))
    t = FORGED + " (d: mallory's key under bob's certificate)"
    data += frame("chat", line(bob.id, bob.name, 4, t, mallory.key.pub_hex, certs[bob.id],
                               mallory.key.sign_line(bob.id, 1, 4, t)))
    rogue, carol = h.new_key("rogue-manager"), h.new_key("carol")
    t = FORGED + " (f: a certificate of a manager alice does not pin, named as its signer)"
    data += frame("chat", line(carol.id, "carol", 1, t, carol.pub_hex,
                               rogue.sign(member_bytes(carol.id, carol.pub_hex, "carol")).hex(),
                               carol.sign_line(carol.id, 1, 1, t), signer=rogue.pub_hex))
    fence = "fence %s" % random_id()
    data += frame("chat", line(bob.id, bob.name, 5, fence, bob.key.pub_hex, certs[bob.id],
                               bob.key.sign_line(bob.id, 1, 5, fence)))
    await c.send(data)
    await h.expect(alice.wait_for_line(r"^%s: %s$" % (bob.name, fence), DELIVERY),
                   "alice shows bob's real line (outside her view, verified by its certificate)")
    forged = [(n, t) for n, t in alice.chat_lines() if FORGED in t]
    h.check(not forged, "alice never showed a forged line%s" % (": shown %s" % forged if forged else ""))
    shown = [t for _, t in alice.chat_lines() if t == fence]
    h.check(len(shown) == 1, "the fence was shown exactly once (%d)" % len(shown))
    h.check(alice.find(r"membership certificate does not verify", "stderr"),
            "alice says why she dropped them (a certificate that does not verify)")
    c.close()
    for r in raws:
        r.stop()


if __name__ == "__main__":
    main(test, "attack_view_forgery", budget=90)
