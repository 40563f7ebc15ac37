#!/usr/bin/env python3
"""A bounded mesh shared by two managers through a real redis-server (issue 14, SPEC-mesh14):
one manager leads (draws the graph), the other mirrors it from the store, and every
servant, whichever manager holds it, holds its view and its neighbours, not the overlay.

Both managers run with --mesh-above 4 --mesh-degree 3. Every servant knows both managers
(an invite from its own, --also the other), so it moves when its manager dies.

  step                               who                      must see
  1. a and b share redis; s1..s5     a, b                     "mesh: N servants, now a bounded
     register with a, s6..s9 with b                            mesh"; exactly one "leading the
                                                              overlay's mesh", the other "NAME
                                                              leads the overlay's mesh"
                                     s1..s9                   told a non-empty neighbour set
  2. /peers on every servant;        every servant            fewer rows than the overlay (9),
     natmesh-ctl status on a and b                            "view of K of 9", K < 9; the
                                                              neighbour relation symmetric, at
                                                              most 3 each, connected (so it
                                                              spans both managers); both
                                                              statuses: the same mesh-leader
  3. everyone says a line            every servant            each line exactly once
  4. the leader is SIGKILLed right   its servants             move to the survivor; lines
     after a chat round was typed;                            before/after: exactly once; no
     a line each afterwards                                   leave or join of anyone; the same
                                                              neighbour relation
                                     the survivor             "leading the overlay's mesh (9
                                                              servants)" within a few seconds;
                                                              status names it mesh-leader;
                                                              still no leave or join once the
                                                              dead leader's registrations
                                                              would have expired
  5. s10 joins the survivor          s10, everyone            s10 told neighbours; its line
                                                              reaches all, it hears theirs
  6. one servant is SIGKILLed        survivor, the others     the survivor logs the repair;
                                                              its former neighbours are told
                                                              new sets; the relation still
                                                              consistent; lines exactly once

When the overlay turns into a bounded mesh, the servants that held the whole list get their
view as a full list and keep the peers it leaves out for one heartbeat timeout (unlisted),
then drop them ("dropped: not re-listed"): step 2 waits for those drops (servants run with
-v, whose "peer out of our view" tells them from view changes) before any no-churn check.

Without the feature (main) --store forces the mesh off: it fails at step 1.
"""
import asyncio
import re
import signal
import time

import harness
from harness import main
import store_fixture

DEGREE = 3
MESH = ["--mesh-above", "4", "--mesh-degree", str(DEGREE)]
HB_TIMEOUT = harness.TIMEOUT  # the managers' --timeout: the lease's ttl too

BOUNDED_RX = r"mesh: (\d+) servants, now a bounded mesh"
LEADING_RX = r"mesh: leading the overlay's mesh"
LEADS_RX = r"mesh: (\S+) leads the overlay's mesh"
TOLD_RX = r"mesh: (\d+) neighbours \(list version \d+\)"
VIEW_RX = r"mesh: view of (\d+) of (\d+) servants"


def also(m):
    return "127.0.0.1,%d,%s" % (m.info["port"], m.info["fp"])


# -v: "peer out of our view: NAME" (debug) tells a view change from a peer kept unlisted.
SERVANT_ARGS = ["-v"]


async def start_servants(h, names, home, other):
    """Servants registered with home, each knowing other too (the invite's also=)."""
    invite = await h.invite(home, extra=["--also", also(other)])
    return [await h.start_servant(n, home, invite=invite, extra=SERVANT_ARGS) for n in names]


def table_of(s):
    """The peers s holds, listed or not, from its log: {name: index of its "peer joined"}."""
    table = {}
    for i, l in enumerate(s.streams["stderr"]):
        m = re.search(r"peer joined: (\S+) at ", l.text)
        if m:
            table[m.group(1)] = i
            continue
        m = re.search(r"peer left: (\S+) \(|peer (\S+) dropped: not re-listed|peer out of our view: (\S+)$", l.text)
        if m:
            table.pop(next(g for g in m.groups() if g), None)
    return table


async def leftovers_gone(h, servants, listed, what):
    """When the overlay became a bounded mesh, the servants that had the whole list got their
    view as a full list: the peers it does not name stay, unlisted, one heartbeat timeout
    (servant/peers.c sv_peers_apply_full), then go ("dropped: not re-listed"). Waits until
    they went, so that no later check counts them."""
    waits, left = [], []
    for s in servants:
        for name, i in table_of(s).items():
            if name not in listed[s.name]:
                left.append("%s:%s" % (s.name, name))
                waits.append(s.wait_log(r"peer %s dropped: not re-listed" % re.escape(name), 2 * HB_TIMEOUT + 2, i))
    h.note("%s: peers held unlisted since the switch to the bounded mesh: %s" % (what, " ".join(left) or "none"))
    await h.wait_all(waits, "%s: the peers left out of the views are dropped (%d)" % (what, len(waits)))


async def mesh_role(h, managers, since=None, timeout=10):
    """Waits until one manager says it leads the overlay's mesh and every other names it.
    Returns the leading Process."""
    since = since or {}
    waits = {m.name: m.wait_log(LEADING_RX, timeout, since.get(m, 0)) for m in managers}
    name, _ = await harness.first_of(**waits)
    h.check(name is not None, "one manager logs \"mesh: leading the overlay's mesh\" (%s)" % name)
    leader = next(m for m in managers if m.name == name)
    lname = leader.name[len("mgr-"):]
    for m in managers:
        if m is leader:
            continue
        await h.expect(m.wait_log(r"mesh: %s leads the overlay's mesh" % re.escape(lname), timeout, since.get(m, 0)),
                       "%s logs that %s leads the overlay's mesh" % (m.name, lname))
        h.check(not m.find(LEADING_RX, "stderr", since.get(m, 0)),
                "%s does not also say it leads the mesh" % m.name)
    return leader


def neighbours_of(rows):
    """The names /peers marks as neighbours (the flags before "key")."""
    out = set()
    for me, name, _id, _ip, _port, rest in rows:
        if not me and "neighbour" in rest.split(" key ")[0].split():
            out.add(name)
    return out


def mesh_problem(rel, views, total):
    """None when rel (name -> neighbour names) is a bounded mesh over exactly its keys and
    every view is one, else what is wrong."""
    names = set(rel)
    for n, nb in sorted(rel.items()):
        if not nb:
            return "%s has no neighbours" % n
        if len(nb) > DEGREE:
            return "%s has %d neighbours (%s), more than %d" % (n, len(nb), sorted(nb), DEGREE)
        if not nb <= names:
            return "%s names neighbours outside the overlay: %s" % (n, sorted(nb - names))
        for x in nb:
            if n not in rel[x]:
                return "%s names %s a neighbour, %s does not name %s (%s)" % (n, x, x, n, sorted(rel[x]))
    seen, todo = set(), [min(names)]
    while todo:
        x = todo.pop()
        if x not in seen:
            seen.add(x)
            todo.extend(rel[x] - seen)
    if seen != names:
        return "the mesh is in pieces: %s cannot reach %s" % (min(names), sorted(names - seen))
    for n, (rows, view) in sorted(views.items()):
        if rows >= total:
            return "%s lists %d peers, the whole overlay of %d" % (n, rows, total)
        if not view:
            return "%s's /peers says no view" % n
        k, of = view
        if of != total or k >= total:
            return "%s: view of %d of %d servants (the overlay is %d)" % (n, k, of, total)
    return None


async def mesh_relation(h, servants, what, timeout=15):
    """Polls every servant's /peers until the neighbour relation they show is a consistent
    bounded mesh over exactly them (the sets may still be on their way); records one check.
    Returns ({name: set of neighbour names}, {name: set of the names its /peers lists})."""
    deadline = time.monotonic() + timeout
    total = len(servants)
    while True:
        rel, views, listed = {}, {}, {}
        for s in servants:
            since = s.mark()
            rows = await s.peers()
            v = s.find(VIEW_RX, "stdout", since)
            rel[s.name] = neighbours_of(rows)
            listed[s.name] = {r[1] for r in rows if not r[0]}
            views[s.name] = (len(rows), (int(v[-1].group(1)), int(v[-1].group(2))) if v else None)
        problem = mesh_problem(rel, views, total)
        if not problem or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)  # the sets and views are still settling: no line says "settled"
    h.note("%s: neighbours %s" % (what, " ".join("%s:%s" % (n, ",".join(sorted(nb))) for n, nb in sorted(rel.items()))))
    h.check(not problem, "%s: /peers on the %d servants shows a bounded mesh (symmetric, 1..%d neighbours each, "
            "connected) and views smaller than the overlay (%s)" % (what, total, DEGREE, problem or "ok"))
    return rel, listed


async def mesh_leader_in_status(h, managers, want, what):
    for m in managers:
        st = await h.status(m)
        store = st.find("store")
        got = store.get("mesh-leader") if store is not None else None
        h.check_eq(got, want, "%s: natmesh-ctl status on %s names the mesh leader" % (what, m.name))


async def say(servants, tag):
    """Each servant types one line; returns {servant: text}."""
    lines = {}
    for s in servants:
        lines[s] = "%s from %s %s" % (tag, s.name, harness.random_id())
        await s.send(lines[s])
    return lines


async def heard(h, servants, lines, tag, timeout=harness.DELIVERY):
    """Every servant but its sender shows each line of lines (then: exactly once)."""
    waits = [r.wait_for_line(r"^%s: %s$" % (re.escape(s.name), re.escape(text)), timeout)
             for s, text in lines.items() for r in servants if r is not s]
    await h.wait_all(waits, "%s: %d lines reach their %d receivers" % (tag, len(lines), len(servants) - 1))


async def test(h):
    if not h.secure:
        raise harness.Skip("the store needs the programs of issue 9")
    redis = await store_fixture.RedisServer(h).start()
    a, b = await store_fixture.start_managers(h, redis.url, extra=MESH)
    mgr_of = {}
    on_a = await start_servants(h, ["s%d" % i for i in range(1, 6)], a, b)
    on_b = await start_servants(h, ["s%d" % i for i in range(6, 10)], b, a)
    for s in on_a:
        mgr_of[s] = a
    for s in on_b:
        mgr_of[s] = b
    nine = on_a + on_b

    # 1. A bounded mesh, drawn by one leader, mirrored by the other.
    await h.wait_all([m.wait_log(BOUNDED_RX, 15) for m in (a, b)],
                     "both managers say the overlay is now a bounded mesh")
    leader = await mesh_role(h, [a, b])
    follower = b if leader is a else a
    lname = leader.name[len("mgr-"):]
    h.note("the mesh leader: %s" % lname)
    await h.wait_all([s.wait_log(TOLD_RX, 15) for s in nine], "every servant was told a non-empty neighbour set")

    # 2. Views and one neighbour relation, whichever manager told each side.
    rel, listed = await mesh_relation(h, nine, "nine servants")
    await leftovers_gone(h, nine, listed, "nine servants")
    cross = sorted((x.name, y) for x in on_a for y in rel[x.name] if y in {s.name for s in on_b})
    h.check(cross, "some neighbours are held by different managers (%s)" % cross)
    h.check(all(len(nb) < len(nine) - 1 for nb in rel.values()),
            "no servant is a neighbour of all others: lines must be passed on")
    await mesh_leader_in_status(h, [a, b], lname, "nine servants")

    # 3. Chat across the managers through the mesh.
    lines = await say(nine, "mesh")
    await heard(h, nine, lines, "mesh")
    h.check_exactly_once(nine, lines, "mesh")

    # 4. The leader dies while a round of lines is on its way.
    moved = [s for s in nine if mgr_of[s] is leader]
    since = {s: s.mark("stderr") for s in nine}
    fsince = follower.mark("stderr")
    during = await say(nine, "during")
    leader.info["killed"] = True
    t_kill = time.monotonic()
    leader.signal(signal.SIGKILL)
    await leader.wait_exit()
    hit = await h.expect(follower.wait_log(LEADING_RX, 2 * HB_TIMEOUT + 2, fsince),
                         "%s takes the mesh over after %s died" % (follower.name, leader.name))
    took = hit.line.t - t_kill
    h.note("measure mesh_lead_takeover_s %.2f" % took)
    h.check(took < 2 * HB_TIMEOUT + 2, "the survivor leads within a few seconds (%.2f s)" % took)
    m = re.search(r"\((\d+) servants", hit.line.text)
    h.check(m and int(m.group(1)) == len(nine), "the survivor's graph holds the nine servants when it takes over (%s)"
            % hit.line.text)
    await h.wait_all([s.wait_log(r"manager 127\.0\.0\.1:%d unreachable \(.*\); trying 127\.0\.0\.1:%d"
                                 % (leader.info["port"], follower.info["port"]), 10, since[s]) for s in moved],
                     "the leader's %d servants try the survivor" % len(moved))
    await h.wait_all([s.wait_log(r"registered as %s\b" % s.name, 10, since[s]) for s in moved],
                     "the leader's %d servants registered with the survivor" % len(moved))
    await heard(h, nine, during, "during", timeout=15)
    after = await say(nine, "after")
    await heard(h, nine, after, "after")
    for tag, ls in (("during", during), ("after", after)):
        h.check_exactly_once(nine, ls, tag)
    store_fixture.check_no_churn(h, nine, since, [s.name for s in nine], "across the failover")
    rel2, _ = await mesh_relation(h, nine, "after the failover")
    h.check_eq(rel2, rel, "the neighbour relation is the one before the failover")
    h.check(not follower.find(LEADS_RX, "stderr", fsince), "the survivor names no other leader after the failover")
    await mesh_leader_in_status(h, [follower], follower.name[len("mgr-"):], "after the failover")

    # 5. A newcomer joins the survivor: it is told neighbours, and chats both ways.
    kill_since = since
    since = {s: s.mark("stderr") for s in nine}
    s10 = await h.start_servant("s10", follower, extra=SERVANT_ARGS)
    ten = nine + [s10]
    await h.expect(s10.wait_log(TOLD_RX, 10), "s10 is told a non-empty neighbour set")
    rel3, _ = await mesh_relation(h, ten, "with s10")
    h.check(rel3["s10"], "s10 has neighbours (%s)" % sorted(rel3["s10"]))
    lines = await say(ten, "newcomer")
    await heard(h, ten, lines, "newcomer")
    h.check_exactly_once(ten, lines, "with s10")
    store_fixture.check_no_churn(h, nine, since, [s.name for s in nine], "when s10 joined")
    # Once more since the kill, past the time the dead leader's registrations, renewed no
    # more, would have expired had the servants not moved (one heartbeat timeout after its
    # last renewal, reaped at the survivor's next tick). An absence cannot be awaited: the
    # rest of that time is slept, if any is left.
    left = t_kill + HB_TIMEOUT + 2 * harness.HEARTBEAT - time.monotonic()
    if left > 0:
        await asyncio.sleep(left)
    store_fixture.check_no_churn(h, nine, kill_since, [s.name for s in nine],
                                 "from the failover on, past the dead leader's expiries")

    # 6. A servant is SIGKILLed: the survivor repairs, its former neighbours are told.
    victim = next((s for s in nine if len(rel3[s.name]) == DEGREE), nine[-1])
    former = [s for s in ten if s.name in rel3[victim.name]]
    h.note("SIGKILL %s (neighbours %s)" % (victim.name, sorted(rel3[victim.name])))
    since = {s: s.mark("stderr") for s in ten}
    fsince = follower.mark("stderr")
    victim.info["killed"] = True
    victim.signal(signal.SIGKILL)
    await victim.wait_exit()
    rest = [s for s in ten if s is not victim]
    n = re.escape(victim.name)
    await h.expect(follower.wait_log(r"mesh: (%s left|\d+ servants left \(the last %s\)); \d+ servants told their "
                                     r"new neighbours" % (n, n), 2 * HB_TIMEOUT + 2, fsince),
                   "the survivor repairs the mesh around %s" % victim.name)
    await h.wait_all([s.wait_log(TOLD_RX, 10, since[s]) for s in former],
                     "%s's former neighbours are told their new sets" % victim.name)
    await h.wait_all([s.wait_log(r"peer left: %s\b" % n, 10, since[s]) for s in former],
                     "%s's former neighbours hear that it left" % victim.name)
    rel4, _ = await mesh_relation(h, rest, "without %s" % victim.name)
    h.check(all(victim.name not in nb for nb in rel4.values()), "nobody names %s a neighbour" % victim.name)
    lines = await say(rest, "repaired")
    await heard(h, rest, lines, "repaired")
    h.check_exactly_once(rest, lines, "after the repair")
    # The repair gives former neighbours new ones (a "peer joined" as they enter a view is
    # expected); nobody else left.
    others = "|".join(s.name for s in rest)
    for s in rest:
        gone = s.find(r"peer left: (%s)\b|dropped: not re-listed" % others, "stderr", since[s])
        h.check(not gone, "%s printed no leave of a servant still there (%s)" %
                (s.name, gone[0].group(0) if gone else "none"))


if __name__ == "__main__":
    main(test, "managers_mesh", budget=110)
