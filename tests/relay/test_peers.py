#!/usr/bin/env python3
"""natmesh-ctl peers NAME with real processes (issue 11): a servant judged unreachable by a
quorum of complainers names its relay and its complainers, how many complaints each and how
recently; the others see its lines come to them directly and theirs reach it through the
relay. The same in --format json, and the status document carries the <complaint>s.

  manager, servants alice bob carol; liar1-3 complain about alice until she is relayed
  peers alice          header: relayed, pulls from relay R (suspicious by quorum);
                       every servant's lines "via relay R"; R's own "pulled from it";
                       "complaints about alice": liar1, liar2, liar3, each "(counts)"
  peers alice --format json   the same as data: servant.relay_name R,
                       complaints_from names the three liars, count >= threshold, last_ms small
  peers bob            alice's lines reach bob "direct to ...", bob's reach alice via R
  status --format xml  alice's <servant> has three <complaint from=...> children
"""
import asyncio
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from complainers import get_relayed  # noqa: E402


async def test(h):
    m = await h.start_manager()
    sv = {n: await h.start_servant(n, m) for n in ("alice", "bob", "carol")}
    await h.wait_peer_count(list(sv.values()), 3)
    liars, relay = await get_relayed(h, m, sv["alice"])
    rname = relay.get("name")
    liar_names = sorted(l.name for l in liars)

    # The status document says who complained.
    root = await h.status(m)
    alice = [s for s in root.iter("servant") if s.get("name") == "alice"][0]
    ids = {s.get("id"): s.get("name") for s in root.iter("servant")}
    froms = sorted(ids.get(c.get("from"), c.get("from")) for c in alice.findall("complaint"))
    h.check_eq(froms, liar_names, "status: alice's <complaint>s come from the liars")
    h.check(root.get("complaint-threshold") == "3", "status: complaint-threshold=3")

    rc, out, err = await h.ctl(m, "peers", "alice")
    h.check_eq(rc, 0, "peers alice exits 0 (%s)" % err.strip()[-200:])
    h.note("natmesh-ctl peers alice:\n" + out)
    lines = out.splitlines()
    h.check(re.match(r"^alice \([0-9a-f]{16}\): servant, relayed, .*; pulls from relay %s \(suspicious by quorum\)$"
                     % re.escape(rname), lines[0]) is not None, "header: alice relayed by %s (%r)" % (rname, lines[0]))
    rows = {l.split()[0]: l for l in lines[2:] if l and not l.startswith((" ", "why", "complaints"))}
    for n in ("bob", "carol"):
        if n == rname:
            h.check("pulled from it, the relay" in rows.get(n, ""), "%s's own lines come down alice's pull" % n)
        else:
            h.check("via relay %s (suspicious by quorum)" % rname in rows.get(n, ""),
                    "%s's lines reach alice via relay %s (%r)" % (n, rname, rows.get(n)))
        h.check(re.search(r"direct to 127\.0\.0\.1:\d+ \(observed\)$", rows.get(n, "")) is not None,
                "alice's lines reach %s directly at its observed address" % n)
    h.check(any(l.startswith("why alice pulls from a relay: judged unreachable (suspicious) by a quorum")
                for l in lines), "peers says why alice is relayed")
    for n in liar_names:
        hit = [l for l in lines if re.match(r"^  from %s\s+\d+ live complaints, the last \d+\.\ds ago \(counts\)$" % n, l)]
        h.check(len(hit) == 1, "peers names complainer %s, how many and how recently" % n)

    rc, out, err = await h.ctl(m, "peers", "alice", "--format", "json")
    h.check_eq(rc, 0, "peers alice --format json exits 0")
    doc = json.loads(out)
    h.check_eq((doc["servant"]["name"], doc["servant"]["state"], doc["servant"]["relay_name"],
                doc["servant"]["relay_reason"]), ("alice", "relayed", rname, "suspicious"),
               "json: alice relayed by %s, suspicious" % rname)
    cf = doc["servant"]["complaints_from"]
    h.check_eq(sorted(c["from_name"] for c in cf), liar_names, "json: complaints from the liars")
    h.check(all(c["counts"] and c["count"] >= 3 and c["last_ms"] < 10000 for c in cf),
            "json: each liar's complaints count, and are recent (%s)" % cf)
    peers = {p["name"]: p for p in doc["peers"]}
    other = "carol" if rname == "bob" else "bob"
    h.check_eq((peers[other]["lines_in"]["path"], peers[other]["lines_in"]["relay_name"]), ("relay", rname),
               "json: %s's lines reach alice through %s" % (other, rname))
    h.check_eq((peers[other]["lines_out"]["path"], peers[other]["lines_out"]["address_kind"]),
               ("direct", "observed"), "json: alice's lines reach %s directly" % other)

    # From the other side.
    rc, out, err = await h.ctl(m, "peers", other)
    row = [l for l in out.splitlines() if l.startswith("alice ")]
    h.check(len(row) == 1 and re.search(r"^alice\s+relayed\s+direct to 127\.0\.0\.1:\d+ \(observed\)\s+via relay %s "
                                        r"\(suspicious by quorum\)$" % re.escape(rname), row[0]) is not None,
            "peers %s: alice's lines come directly, %s's reach alice via %s (%r)" % (other, other, rname, row))
    rc, out, err = await h.ctl(m, "peers", "nobody")
    h.check(rc == 3 and "lists no servant named \"nobody\"" in err, "peers of an unknown name: exit 3, says so")
    for l in liars:
        l.stop()


if __name__ == "__main__":
    harness.main(test, "peers", budget=90)
