#!/usr/bin/env python3
"""Metrics and the status page during a real run (issue 11, what it must show 3 and 4):
a manager with --metrics, a dedicated natmesh-relay with --metrics, three servants, and
alice judged unreachable by a quorum of complainers and relayed by the relay.

  - /metrics parses as Prometheus text; the servants by state equal natmesh-ctl status's;
    joins, complaints, the verdict, the relay assignment, heartbeats, frames by type count.
  - the relay's byte and line counters grow as chat lines are relayed to alice, on its own
    /metrics and in the manager's per-relay series.
  - headless Chromium loads the manager's page: every servant's name in the table and an
    SVG node for each, alice's arrow to the relay; the screenshot is not blank. The relay's
    page shows its client."""
import asyncio
import collections
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "relay"))
import harness  # noqa: E402
import webkit  # noqa: E402
from complainers import get_relayed  # noqa: E402


async def scrape(h, port, what):
    status, headers, body = await webkit.request(port, "/metrics")
    h.check_eq(status, 200, "GET /metrics on %s" % what)
    ctype = headers.get("Content-Type", "")
    h.check(ctype.startswith("text/plain; version=0.0.4"), "%s's /metrics content type (%s)" % (what, ctype))
    try:
        return webkit.parse_metrics(body.decode("utf-8"))
    except ValueError as e:
        raise harness.CheckFailed("%s's /metrics is not valid exposition text: %s" % (what, e))


async def until(h, probe, what, timeout=10.0):
    """Calls probe() (async, returning (ok, detail)) until ok; the snapshot is published
    once a second, so a change shows within that."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ok, detail = await probe()
        if ok or asyncio.get_running_loop().time() > deadline:
            h.check(ok, "%s (%s)" % (what, detail))
            return detail
        await asyncio.sleep(0.3)


async def test(h):
    if not webkit.chromium():
        raise harness.Skip("no chromium")
    mport, rport = h.free_port(), h.free_port()
    _, rkey = h.state_dir("relay1")
    m = await h.start_manager(relay_keys=[rkey.fp], extra=["--metrics", str(mport)])
    await h.expect(m.wait_log(r"metrics and status page on http://127\.0\.0\.1:%d/" % mport, 5),
                   "the manager serves metrics on loopback by default")
    relay = await h.start_servant("relay1", m, prog="natmesh-relay",
                                  extra=["--metrics", "127.0.0.1:%d" % rport])
    names = ["alice", "bob", "carol"]
    # alice (relayed by liars' complaints, though reachable) runs with --no-reverse, so that
    # her peers' lines come through the relay whose counters are checked, not back on her
    # own connections to them (connection reversal would put her relay on standby).
    sv = {n: await h.start_servant(n, m, extra=("--no-reverse",) if n == "alice" else ()) for n in names}
    await h.wait_peer_count(list(sv.values()), 4)
    liars, relay_entry = await get_relayed(h, m, sv["alice"])
    h.check_eq(relay_entry.get("name"), "relay1", "alice's relay is the dedicated natmesh-relay")

    # -- servants by state: /metrics against natmesh-ctl status --format xml --------------
    async def states_match():
        root = await h.status(m)
        want = collections.Counter(s.get("state") for s in root.iter("servant"))
        got_m = await scrape(h, mport, "the manager")
        got = {st: webkit.sample(got_m, "natmesh_manager_servants", state=st)
               for st in ("direct", "mapped", "suspicious", "relayed", "unknown")}
        return all(got[st] == want.get(st, 0) for st in got), "metrics %s, status %s" % (got, dict(want))
    await until(h, states_match, "natmesh_manager_servants by state equals natmesh-ctl status")

    mm = await scrape(h, mport, "the manager")
    h.check((webkit.sample(mm, "natmesh_manager_servants", state="relayed") or 0) >= 1,
            "the relayed servant is counted as relayed")
    h.check(webkit.sample(mm, "natmesh_manager_joins_total") >= 7,
            "joins: relay, 3 servants and 3 complainers (%s)" % webkit.sample(mm, "natmesh_manager_joins_total"))
    h.check(webkit.sample(mm, "natmesh_manager_complaints_total") >= 9, "complaints counted")
    h.check_eq(webkit.sample(mm, "natmesh_manager_verdicts_total", verdict="suspicious"), 1, "one verdict")
    h.check(webkit.sample(mm, "natmesh_manager_relay_assignments_total") >= 1, "the relay assignment counted")
    h.check(webkit.sample(mm, "natmesh_manager_heartbeats_total") > 0, "heartbeats counted")
    h.check(webkit.sample(mm, "natmesh_manager_frames_total", direction="in", type="heartbeat") > 0 and
            webkit.sample(mm, "natmesh_manager_frames_total", direction="out", type="relay-assign") >= 1 and
            webkit.sample(mm, "natmesh_manager_frame_bytes_total", direction="in", type="hello") > 0,
            "frames and bytes by direction and type")
    h.check_eq(webkit.sample(mm, "natmesh_manager_relay_clients", relay="relay1"), 1,
               "the manager's per-relay clients gauge")
    # Issue 14: without --store every listed servant is this manager's own, and no
    # natmesh_store_* series exists.
    listed = sum(webkit.sample(mm, "natmesh_manager_servants", state=st) or 0
                 for st in ("direct", "mapped", "suspicious", "relayed", "unknown"))
    h.check(webkit.sample(mm, "natmesh_servants", held="local") == listed and
            webkit.sample(mm, "natmesh_servants", held="remote") == 0,
            "natmesh_servants: %d local, 0 remote without a store (%s, %s)" %
            (listed, webkit.sample(mm, "natmesh_servants", held="local"),
             webkit.sample(mm, "natmesh_servants", held="remote")))
    h.check(not any(name.startswith("natmesh_store_") for name in mm),
            "no natmesh_store_* series without a store")

    # -- the relay's counters grow as lines are relayed to alice ---------------------------
    # The relay learns its client from relay-serve, and its snapshot follows within a second.
    async def relay_has_client():
        got = await scrape(h, rport, "the relay")
        n = webkit.sample(got, "natmesh_relay_clients")
        return n == 1, "natmesh_relay_clients %s" % n
    await until(h, relay_has_client, "the relay has one client")
    before = await scrape(h, rport, "the relay")
    b0 = webkit.sample(before, "natmesh_relay_sent_bytes_total")
    l0 = webkit.sample(before, "natmesh_relay_lines_total")
    mb0 = webkit.sample(mm, "natmesh_manager_relay_sent_bytes_total", relay="relay1") or 0
    _, lines = await h.chat_round([sv["bob"], sv["carol"]], list(sv.values()), "relayed")
    h.check_exactly_once(list(sv.values()), lines, "relayed chat")

    async def relay_grew():
        now = await scrape(h, rport, "the relay")
        b, n = webkit.sample(now, "natmesh_relay_sent_bytes_total"), webkit.sample(now, "natmesh_relay_lines_total")
        return b > b0 and n >= l0 + 2, "sent bytes %d -> %d, lines %d -> %d" % (b0, b, l0, n)
    await until(h, relay_grew, "the relay's sent bytes and lines grew with the two relayed lines")

    async def manager_saw_load():
        now = await scrape(h, mport, "the manager")
        b = webkit.sample(now, "natmesh_manager_relay_sent_bytes_total", relay="relay1") or 0
        return b > mb0, "relay1 sent bytes in the manager's metrics %d -> %d" % (mb0, b)
    await until(h, manager_saw_load, "the relay's load report raised the manager's per-relay bytes", 15)

    # -- the status page in a real browser ------------------------------------------------
    status, headers, body = await webkit.request(mport, "/status.json")
    h.check_eq((status, headers.get("Content-Type")), (200, "application/json"), "GET /status.json")
    dom = await webkit.browse(h, "http://127.0.0.1:%d/" % mport, "dump-dom of the manager's page")
    listed = ["relay1"] + names + ["liar1", "liar2", "liar3"]
    for n in listed:
        h.check(re.search(r"<td>%s</td>" % re.escape(n), dom) is not None, "the page's table shows %s" % n)
    svg = re.search(r"<svg id=\"overlay\".*?</svg>", dom, re.S)
    h.check(svg is not None, "the page has the overlay's <svg>")
    svg = svg.group(0) if svg else ""
    nodes = re.findall(r'<g class="node st-(\w+)" data-name="([^"]+)"', svg)
    h.check_eq(sorted(n for _, n in nodes), sorted(listed), "one SVG node per listed servant")
    h.check(("relayed", "alice") in nodes, "alice's node is marked relayed")
    h.check(len(re.findall(r'class="pull"', svg)) == 1 and ">suspicious</text>" in svg,
            "one arrow to a relay, labelled suspicious")
    h.check(len(re.findall(r'class="direct"', svg)) >= 3, "direct links drawn")
    shot = os.path.join(h.dir, "manager-page.png")
    await webkit.browse(h, "http://127.0.0.1:%d/" % mport, "screenshot of the manager's page", screenshot=shot)
    h.check(os.path.exists(shot), "chromium wrote the screenshot")
    colours = webkit.png_colours(shot) if os.path.exists(shot) else 0
    h.check(colours > 20, "the screenshot is not blank (%d distinct colours)" % colours)

    rdom = await webkit.browse(h, "http://127.0.0.1:%d/" % rport, "dump-dom of the relay's page")
    h.check("natmesh-relay relay1" in rdom, "the relay's page names the relay")
    h.check(re.search(r"<td>%s</td><td[^>]*>yes</td>" % sv["alice"].info["id"], rdom) is not None,
            "the relay's page lists alice as an attached client")
    for liar in liars:
        liar.stop()


if __name__ == "__main__":
    harness.main(test, "web_metrics", budget=140)
