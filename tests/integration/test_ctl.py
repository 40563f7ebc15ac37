#!/usr/bin/env python3
"""natmesh-ctl status against a live manager, and against managers that are absent,
silent or hostile; since issue 9 over TLS with an operator's key, pinning the manager's.

  case                                   must see
  3 servants, --format table             header with version, 3 servants, heartbeat 1s; one
                                         row per servant: name, id, address, state, LAST-HB, LOAD
  --format xml                           the status document: servants="3", ids and names
  --format dot                           a digraph that `dot -Tpng` renders
  NATMESH_MANAGER=127.0.0.1:P            used when --manager is absent
  the manager's default state dir        used when --state-dir is absent (XDG_STATE_HOME)
  no manager key there                   exit 1, "no manager key in DIR", never creates one
  keygen                                 prints the key's fingerprint, the same when run again
  --admin-key K --manager-key FP         answered when the manager lists K (--admin-key);
                                         exit 3 with "status is for operators" when it does not
  a manager with another key             exit 4, "presented key X, expected Y: refusing it"
  nothing listening                      exit 2, "cannot reach manager at 127.0.0.1:P"
  a listener that never answers          exit 2 after --timeout, not before
  a manager answering with a DOCTYPE     exit 3, "unusable status" (and other hostile answers)
  a manager without a store              no MANAGER column, no <store>, "store" and each
                                         servant's "manager" null in the JSON
  a (fake) manager with a store, paged   the MANAGER column and a store line; <store> once in
                                         the XML; the JSON's "store"; DOT's manager nodes
  bad arguments / --help                 exit 1 / exit 0 with usage

The fake managers are Python TLS servers with a key of their own, which natmesh-ctl is told
to expect (--admin-key K --manager-key FAKE_FP).
"""
import asyncio
import json
import os
import re
import shutil
import time
import xml.etree.ElementTree as ET

import harness
from harness import Key, main, frame


async def fake_manager(h, reply, key=None):
    """A manager on a free port (TLS with key, by default the test's "fake-manager" key,
    once programs speak TLS) that reads the request header, writes reply (None: says
    nothing) and holds the connection until the client closes it."""
    async def on_conn(c):
        f = await c.read_frame(60)
        if f is not None and reply is not None:
            await c.send(reply)
        while f is not None:
            f = await c.read_frame(3600)

    return await h.serve(on_conn, key or h.new_key("fake-manager"), label="fake manager")


def fake_args(h, port, fp=None):
    """natmesh-ctl's arguments for a fake manager on port: the operator's key and the
    fake's fingerprint (or fp) once programs speak TLS."""
    args = ["--manager", "127.0.0.1:%d" % port]
    if h.secure:
        args += ["--admin-key", h.new_key("operator").key_path, "--manager-key", fp or h.new_key("fake-manager").fp]
    return args


# Attributes that change from one status to the next (the XML and the JSON are two asks).
VOLATILE = {"last-heartbeat-ms", "connected-s", "bytes-in", "bytes-out", "attached"}
LISTS = {"unreached-by", "unserved"}
ROOT = {"version": "version", "heartbeat": "heartbeat_s", "timeout": "timeout_s",
        "servants": "servants_count", "complaint-threshold": "complaint_threshold",
        "complaint-window": "complaint_window_s"}


def json_value_of(attr, v):
    """What an XML attribute's text becomes in the JSON."""
    if attr in LISTS:
        return v.split()
    if v == "" or (attr == "ext-port" and v == "0"):  # no mapping: no external port
        return None
    return int(v) if re.fullmatch(r"\d+", v) and attr not in ("id", "relay", "name", "relay-name", "manager") else v


async def json_matches_xml(h, m, names):
    rc, out, err = await h.ctl(m, "status", "--format", "xml")
    h.check_eq(rc, 0, "status --format xml exits 0")
    root = ET.fromstring(out)
    rc, out, err = await h.ctl(m, "status", "--format", "json")
    h.check_eq(rc, 0, "status --format json exits 0")
    h.check(out.count("\n") == 1, "json on a pipe is one line")
    doc = json.loads(out)
    h.check_eq(doc["schema"], 1, "json: schema 1")
    for attr, member in ROOT.items():
        if attr in root.attrib:
            want = int(root.get(attr))
            h.check(doc[member] == want or (attr == "version" and doc[member] >= want),
                    "json: %s is <status %s> (%r, %r)" % (member, attr, doc[member], root.get(attr)))
    by_id = {s["id"]: s for s in doc["servants"]}
    h.check_eq(sorted(s["name"] for s in doc["servants"]), sorted(names), "json: every servant")
    missing, differ = [], []
    for x in root.findall("servant"):
        j = by_id.get(x.get("id"), {})
        for attr, v in x.attrib.items():
            member = attr.replace("-", "_")
            if member not in j:
                missing.append("%s.%s" % (x.get("name"), member))
            elif attr in VOLATILE:
                if not isinstance(j[member], int):
                    differ.append("%s.%s=%r" % (x.get("name"), member, j[member]))
            elif j[member] != json_value_of(attr, v):
                differ.append("%s.%s: xml %r json %r" % (x.get("name"), member, v, j[member]))
        cs = [{"from": c.get("from"), "count": int(c.get("count"))} for c in x.findall("complaint")]
        if [{"from": c["from"], "count": c["count"]} for c in j.get("complaints_from", [])] != cs:
            differ.append("%s.complaints_from" % x.get("name"))
    # Issue 14: <store> (only with a store) is "store", else null.
    x = root.find("store")
    if x is None:
        h.check(doc.get("store", 1) is None, "json: no <store>, \"store\" null (%r)" % doc.get("store", "absent"))
    else:
        k = doc.get("store") or {}
        got = (k.get("url"), k.get("state"), k.get("primary") or "", k.get("managers_count"),
               [(e["name"], e["addr"] or "", e["port"]) for e in k.get("managers", [])])
        want = (x.get("url"), x.get("state"), x.get("primary"), int(x.get("managers")),
                [(e.get("name"), e.get("addr"), int(e.get("port"))) for e in x.findall("manager")])
        h.check_eq(got, want, "json: \"store\" is <store>")
    h.check(not missing, "json: every <servant> attribute is a member (missing: %s)" % missing)
    h.check(not differ, "json: every member equals its attribute (differ: %s)" % differ)
    # And the table's columns are all in it: NAME ID ADDRESS DIAL STATE MAPPING RELAY LAST-HB LOAD.
    for member in ("name", "id", "ip", "port", "dial_ip", "dial_port", "state", "mapping", "relay_name",
                   "relay_reason", "last_heartbeat_ms", "clients", "max_clients", "bytes_in", "bytes_out",
                   "drops", "unreached_by", "unserved"):
        h.check(all(member in s for s in doc["servants"]), "json: the table's %s is in every servant" % member)


async def test(h):
    if h.secure:
        # The manager's state dir where natmesh-ctl looks by default: XDG_STATE_HOME/natmesh/manager.
        xdg = os.path.join(h.dir, "xdg")
        mdir = os.path.join(xdg, "natmesh", "manager")
        os.makedirs(mdir, mode=0o700)
        m = await h.start_manager(state_dir=mdir)
    else:
        m = await h.start_manager()
    names = ["alice", "bob", "eve"]
    alice = await h.start_servant("alice", m)
    bob = await h.start_servant("bob", m)
    eve = await h.start_servant("eve", m, listen="127.0.0.2")
    servants = [alice, bob, eve]
    await h.wait_peer_count(servants, 3)
    ids = {s.name: s.find(r"registered as \S+ \(([0-9a-f]{16})\)", "stderr")[0].group(1) for s in servants}
    # Let one heartbeat go by so LAST-HB reflects heartbeats, not registration.
    await h.expect(alice.wait_log(r"heartbeat|peer list version", 5), "alice is heartbeating")

    # Table.
    rc, out, err = await h.ctl(m, "status")
    h.check_eq(rc, 0, "status exits 0")
    lines = out.splitlines()
    h.check(re.match(r"^overlay version \d+, 3 servants, heartbeat 1s", lines[0]) is not None,
            "table header: %r" % lines[0])
    cols = lines[1].split()
    h.check_eq(cols, ["NAME", "ID", "ADDRESS", "DIAL", "STATE", "MAPPING", "RELAY", "LAST-HB", "LOAD"],
               "table columns")
    rows = {l.split()[0]: l.split() for l in lines[2:]}
    h.check_eq(sorted(rows), names, "one row per servant")
    for n in names:
        r = rows[n]
        h.check(r[1] == ids[n], "%s's row shows its id %s" % (n, ids[n]))
        want_ip = "127.0.0.2" if n == "eve" else "127.0.0.1"
        h.check(re.match(r"^%s:\d+$" % re.escape(want_ip), r[2]) is not None,
                "%s's ADDRESS is %s:port (%s)" % (n, want_ip, r[2]))
        h.check(r[4] == "direct" and r[6] == "-", "%s is direct, without relay" % n)
        age = re.match(r"^(\d+\.\d)s$", r[7])
        h.check(age is not None and float(age.group(1)) <= 2.5 and r[8] == "ago",
                "%s was heard from recently (%s %s)" % (n, r[7], r[8] if len(r) > 8 else ""))

    # XML.
    rc, out, err = await h.ctl(m, "status", "--format", "xml")
    h.check_eq(rc, 0, "status --format xml exits 0")
    root = ET.fromstring(out)
    h.check(root.tag == "status" and root.get("servants") == "3" and root.get("heartbeat") == "1",
            "xml: <status servants=3 heartbeat=1>")
    h.check_eq({s.get("name"): s.get("id") for s in root.findall("servant")}, ids,
               "xml: every servant with its id")
    # Issue 14: a manager without a store names no holder and sends no <store>.
    h.check(root.find("store") is None and all(s.get("manager") is None for s in root.findall("servant")),
            "xml: no <store> and no manager attribute without a store")
    rc, out, err = await h.ctl(m, "status", "--format", "json")
    doc = json.loads(out)
    h.check(doc["store"] is None and all(s["manager"] is None for s in doc["servants"]),
            "json: \"store\" and every servant's \"manager\" null without a store")

    # JSON (issue 11): Python's json module reads it, and it carries every field of the XML
    # status of the same manager, member by member (docs/status-json.md): '-' written '_',
    # numbers as numbers, name lists as arrays, absent or empty values as null.
    await json_matches_xml(h, m, names)

    # DOT, rendered by Graphviz.
    rc, dot, err = await h.ctl(m, "status", "--format", "dot")
    h.check_eq(rc, 0, "status --format dot exits 0")
    h.check(dot.startswith("digraph"), "dot output is a digraph")
    for n in names:
        h.check('label="%s\\n' % n in dot, "dot has a node labelled %s" % n)
    h.check_eq(len(re.findall(r"^\s*manager -> ", dot, re.M)), 3, "dot: an edge from the manager to each servant")
    if shutil.which("dot"):
        proc = await asyncio.create_subprocess_exec(
            "dot", "-Tpng", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        png, derr = await asyncio.wait_for(proc.communicate(dot.encode()), 30)
        h.check(proc.returncode == 0 and png.startswith(b"\x89PNG"),
                "dot -Tpng renders it (%d bytes) %s" % (len(png), derr.decode()[:200]))
    else:
        h.note("Graphviz not installed: dot -Tpng not tried")

    # NATMESH_MANAGER, and (since issue 9) the manager's default state dir.
    env = {"NATMESH_MANAGER": "127.0.0.1:%d" % m.info["port"]}
    if h.secure:
        env.update(XDG_STATE_HOME=xdg)
    rc, out, err = await h.run_tool("natmesh-ctl", ["status"], env=env)
    h.check(rc == 0 and "3 servants" in out, "NATMESH_MANAGER names the manager%s (%d %s)" %
            (", the default state dir holds its key" if h.secure else "", rc, err.strip()[-200:]))
    if h.secure:
        await keys_and_operators(h, m)

    await store_status(h)

    # Nothing listening.
    dead = h.free_port()
    rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, dead) + ["status"])
    h.check_eq(rc, 2, "unreachable manager: exit 2")
    h.check("cannot reach manager at 127.0.0.1:%d" % dead in err, "unreachable: clear message (%s)" % err.strip())

    # A listener that accepts and never answers: the timeout, not a hang.
    server, port = await fake_manager(h, None)
    t0 = time.monotonic()
    rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, port) + ["--timeout", "1", "status"])
    took = time.monotonic() - t0
    h.check_eq(rc, 2, "silent manager: exit 2")
    h.check(0.9 <= took < 5, "silent manager: gave up after the 1s timeout (%.2fs)" % took)
    h.check("cannot reach manager at" in err, "silent manager: clear message (%s)" % err.strip())
    server.close()

    # A manager answering with hostile XML, with garbage, with an error frame.
    bomb = ('<!DOCTYPE status [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            '<status version="1"><servant id="00000000000000aa" name="&b;"/></status>')
    cases = [
        ("DOCTYPE status", frame("status", bomb), 3, "unusable status"),
        ("not a status", frame("status", "<peers version=\"1\"/>"), 3, "unusable status"),
        ("wrong frame type", frame("peers", "<peers version=\"1\"/>"), 3, "no status"),
        ("error frame", frame("error", "go away"), 3, "no status"),
        ("bad magic", b"HTTP/1.0 400 Bad Request\r\n\r\n", 3, "no status"),
        ("oversized length", frame("status", length=0x7FFFFFFF), 3, "no status"),
    ]
    for what, reply, want_rc, want_msg in cases:
        server, port = await fake_manager(h, reply)
        rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, port) + ["--timeout", "3", "status"])
        h.check(rc == want_rc and want_msg in err and out == "",
                "manager answering with %s: exit %d, %r (%s)" % (what, rc, want_msg, err.strip().splitlines()[-1:]))
        server.close()
    if h.secure:
        # A plaintext manager (before issue 9) answering at once: no TLS, no status.
        async def plain(c):
            await c.send(frame("status", '<status version="1" heartbeat="1" timeout="3" servants="0"/>'))
            while await c.read_frame(3600):
                pass
        server, port = await h.serve(plain, None, label="plaintext manager")
        rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, port) + ["--timeout", "3", "status"])
        h.check(rc == 2 and "TLS" in err and out == "",
                "a plaintext manager: exit 2, TLS failed (%d %s)" % (rc, err.strip().splitlines()[-1:]))
        server.close()

    # Arguments.
    rc, out, err = await h.run_tool("natmesh-ctl", ["--help"])
    h.check(rc == 0 and "usage: natmesh-ctl" in out and "--format" in out, "--help exits 0 with usage")
    usage_errors = [["status", "--format", "png"], ["frobnicate"], [], ["--manager", "host:99999", "status"],
                    ["status", "--format"], ["peers"], ["peers", "a", "b"], ["peers", "alice", "--format", "dot"]]
    if h.secure:
        op = h.new_key("operator").key_path
        usage_errors += [["--admin-key", op, "status"], ["--admin-key", op, "--manager-key", "abc", "status"],
                         ["--admin-key", os.path.join(h.dir, "no-such-key.pem"), "--manager-key", m.info["fp"],
                          "status"]]
    for args in usage_errors:
        rc, out, err = await h.run_tool("natmesh-ctl", args)
        h.check_eq(rc, 1, "natmesh-ctl %s is a usage error (%s)" % (" ".join(args), err.strip().splitlines()[-1:]))


STORE = ('<store url="sentinel://10.0.0.7:26379,10.0.0.8:26379/nm" state="up" primary="10.0.0.5:6379" '
         'managers="3"><manager name="m1" addr="10.0.0.1" port="85" last-seen-ms="300"/>'
         '<manager name="m2" addr="10.0.0.2" port="85"/><manager name="m3" addr="10.0.0.3" port="85"/></store>')


def store_page(page, pages, servants):
    """One page of a status from a manager with a store (issue 14): the <store> on every
    page, servants (name, id, holder) with their holders."""
    rows = "".join('<servant id="%s" name="%s" manager="%s" ip="10.0.1.%d" port="4001" state="direct"/>'
                   % (sid, name, holder, i + 1) for i, (name, sid, holder) in enumerate(servants))
    paging = ' page="%d" pages="%d"' % (page, pages) if pages > 1 else ""
    return frame("status", '<status version="9" heartbeat="1" timeout="3" servants="4"%s>%s%s</status>'
                 % (paging, STORE, rows))


async def store_status(h):
    """Issue 14: what natmesh-ctl shows of a manager with a store (a fake one: the status
    document is all natmesh-ctl sees), sent in two pages."""
    servants = [("alice", "00000000000000aa", "m1"), ("bob", "00000000000000bb", "m2"),
                ("carol", "00000000000000cc", "m3"), ("dave", "00000000000000dd", "m1")]
    reply = store_page(0, 2, servants[:2]) + store_page(1, 2, servants[2:])
    server, port = await fake_manager(h, reply)
    args = fake_args(h, port) + ["--timeout", "5", "status"]
    rc, out, err = await h.run_tool("natmesh-ctl", args)
    h.check_eq(rc, 0, "a manager with a store: status exits 0 (%s)" % err.strip()[-200:])
    lines = out.splitlines()
    h.check(len(lines) == 7 and lines[1] == "store sentinel://10.0.0.7:26379,10.0.0.8:26379/nm up (primary "
            "10.0.0.5:6379), 3 managers: m1 10.0.0.1:85, m2 10.0.0.2:85, m3 10.0.0.3:85",
            "table: the store line under the header (%r)" % lines[1:2])
    cols = lines[2].split() if len(lines) > 2 else []
    h.check_eq(cols, ["NAME", "ID", "ADDRESS", "DIAL", "STATE", "MAPPING", "RELAY", "MANAGER", "LAST-HB", "LOAD"],
               "table columns with a store")
    holders = {l.split()[0]: l.split()[7] for l in lines[3:] if len(l.split()) > 7}
    h.check_eq(holders, {n: k for n, _, k in servants}, "table: each servant's MANAGER, from both pages")
    rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, port) + ["--timeout", "5", "status", "--format", "xml"])
    root = ET.fromstring(out) if rc == 0 else ET.Element("none")
    h.check(len(root.findall("store")) == 1 and root.get("servants") == "4" and root.get("pages") is None,
            "xml: the pages as one status, with one <store>")
    h.check_eq({x.get("name"): x.get("manager") for x in root.findall("servant")}, {n: k for n, _, k in servants},
               "xml: each servant's manager attribute")
    rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, port) + ["--timeout", "5", "status", "--format", "json"])
    doc = json.loads(out) if rc == 0 else {}
    k = doc.get("store") or {}
    h.check(k.get("state") == "up" and k.get("primary") == "10.0.0.5:6379" and
            [e["name"] for e in k.get("managers", [])] == ["m1", "m2", "m3"],
            "json: the store, its primary and managers (%r)" % k)
    h.check_eq({s["name"]: s["manager"] for s in doc.get("servants", [])}, {n: k for n, _, k in servants},
               "json: each servant's manager")
    rc, dot, err = await h.run_tool("natmesh-ctl", fake_args(h, port) + ["--timeout", "5", "status", "--format", "dot"])
    h.check(rc == 0 and '"m_0" [label="manager\\nm1\\n10.0.0.1:85"' in dot and
            '"m_0" -> "s_00000000000000dd"' in dot and '"m_2" -> "s_00000000000000cc"' in dot,
            "dot: a node per manager, each servant off its holder")
    server.close()


async def keys_and_operators(h, m):
    """Issue 9: natmesh-ctl's keys, and who the manager answers."""
    # No manager key in the default place: said, and none made there.
    home = os.path.join(h.dir, "empty-home")
    os.makedirs(home, mode=0o700)
    rc, out, err = await h.run_tool("natmesh-ctl", ["--manager", "127.0.0.1:%d" % m.info["port"], "status"],
                                    env={"XDG_STATE_HOME": home})
    h.check(rc == 1 and "no manager key in" in err, "no manager key: exit 1, said (%d %s)" % (rc, err.strip()[-200:]))
    h.check(not os.path.exists(os.path.join(home, "natmesh", "manager", "key.pem")),
            "natmesh-ctl made no manager key")

    # keygen: a key, its fingerprint; the same again.
    kdir = os.path.join(h.dir, "ctl-state")
    rc, out, err = await h.run_tool("natmesh-ctl", ["--state-dir", kdir, "keygen"])
    key = Key.create(os.path.join(kdir, "key.pem"), os.path.join(h.dir, "ctl-key.cert.pem"))
    h.check(rc == 0 and out.strip() == key.fp, "keygen prints the new key's fingerprint (%d %r)" % (rc, out.strip()))
    rc, again, err = await h.run_tool("natmesh-ctl", ["--state-dir", kdir, "keygen"])
    h.check(rc == 0 and again == out, "keygen again keeps the key")

    # A remote operator: answered once the manager lists the key, refused before.
    remote = ["--manager", "127.0.0.1:%d" % m.info["port"], "--admin-key", key.key_path, "--manager-key",
              m.info["fp"], "status", "--format", "xml"]
    rc, out, err = await h.run_tool("natmesh-ctl", remote)
    h.check(rc == 3 and "status is for operators" in err,
            "a key the manager does not list: exit 3, 'status is for operators' (%d %s)" % (rc, err.strip()[-200:]))
    m2 = await h.start_manager(name="manager-admin", admin_keys=[key.fp])
    remote[1] = "127.0.0.1:%d" % m2.info["port"]
    remote[5] = m2.info["fp"]
    rc, out, err = await h.run_tool("natmesh-ctl", remote)
    h.check(rc == 0 and ET.fromstring(out).tag == "status",
            "a key listed with --admin-key gets the status (%d %s)" % (rc, err.strip()[-200:]))

    # The manager's key is pinned: another key answering is refused, naming both.
    server, port = await fake_manager(h, frame("status", '<status version="1" heartbeat="1" timeout="3" servants="0"/>'))
    fake_fp = h.new_key("fake-manager").fp
    rc, out, err = await h.run_tool("natmesh-ctl", fake_args(h, port, fp=m.info["fp"]) + ["status"])
    h.check(rc == 4 and "presented key %s, expected %s: refusing it" % (fake_fp, m.info["fp"]) in err and out == "",
            "a manager with another key: exit 4, naming both keys (%d %s)" % (rc, err.strip()[-300:]))
    server.close()


if __name__ == "__main__":
    main(test, "ctl", budget=90)
