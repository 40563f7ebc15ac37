#!/usr/bin/env python3
"""Config files with errors: the program exits non-zero before doing anything, and its
error names the file and the line (and the offending value where there is one).

  program           config (line of the error)                       stderr must contain
  natmesh-servant   unknown element <prot> (4)                       FILE:4: ... <prot>
  natmesh-servant   <port>70000</port> (3)                           FILE:3: ... 70000
  natmesh-servant   <ban> without <target> (5)                       FILE:5:
  natmesh-servant   unclosed <bans>, </config> on line 4             FILE:4:
  natmesh-servant   DOCTYPE with an external entity                  FILE ... DOCTYPE
  natmesh-servant   a file that does not exist                       FILE
  natmesh-manager   <heartbeat>0</heartbeat> (3)                     FILE:3: ... "0"
  natmesh-manager   unknown element <listne> (2)                     FILE:2: ... <listne>
  and a good config passes --check-config with exit 0.

Since issue 9 (keys):
  natmesh-servant   <manager-key>nothex</manager-key> (3)            FILE:3: ... nothex
  natmesh-servant   <invite> that is no invite (2)                   FILE:2: ... invite
  natmesh-servant   neither invite nor manager key                   exit 2, "no manager key:
                                                                     pass --invite or --manager-key"
  natmesh-manager   <admission>closed</admission> (3)                FILE:3: ... "closed"
  natmesh-manager   <relay-key>abc</relay-key> (3)                   FILE:3: ... "abc"
  and the good servant config carries a <manager-key>.

Since issue 14 (several managers, <connectionmgr> in the list form):
  natmesh-servant   two plain <connectionmgr> (3)                    FILE:3: ... HOST,PORT,FINGERPRINT
  natmesh-servant   <connectionmgr>m,085,FP</connectionmgr> (3)      FILE:3: ... "m,085,
  natmesh-servant   the same address twice (3)                       FILE:3: ... named twice
  natmesh-servant   six managers (7)                                 FILE:7: ... at most 5
  natmesh-servant   HOST,PORT without any key (2)                    FILE:2: ... names no key
  and two pinned managers (no invite, no key) pass --check-config.
"""
import re

import harness
from harness import main

SERVANT_CASES = [
    ("unknown element", "<?xml version=\"1.0\"?>\n<config>\n  <connectionmgr>127.0.0.1</connectionmgr>\n"
     "  <prot>85</prot>\n</config>\n", 4, "<prot>"),
    ("out of range", "<config>\n  <connectionmgr>127.0.0.1</connectionmgr>\n  <port>70000</port>\n</config>\n",
     3, "70000"),
    ("ban without target", "<config>\n  <port>85</port>\n  <bans>\n    <ban><target>10.0.0.1</target></ban>\n"
     "    <ban/>\n  </bans>\n</config>\n", 5, None),
    # The first error is where </config> closes <bans> (line 4), not the end of the file.
    ("malformed", "<config>\n  <port>85</port>\n  <bans>\n</config>\n", 4, None),
    ("xxe", "<?xml version=\"1.0\"?>\n<!DOCTYPE config [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
     "<config><connectionmgr>&x;</connectionmgr></config>\n", None, "DOCTYPE"),
    ("wrong root", "<?xml version=\"1.0\"?>\n<settings/>\n", 2, "<config>"),
    ("empty name", "<config>\n  <name></name>\n</config>\n", 2, "<name>"),
]

GOOD = ("<?xml version=\"1.0\"?>\n<config>\n  <connectionmgr>127.0.0.1</connectionmgr>\n"
        "  <port>85</port>\n  <bans>\n    <ban><target>10.1.2.3</target></ban>\n"
        "    <ban><target>spam.example.org</target></ban>\n  </bans>\n%s</config>\n")
MANAGER_KEY = "  <manager-key>%s</manager-key>\n" % ("5d41402abc4b2a76b9719d911017c592" * 2)

KEY_SERVANT_CASES = [
    ("bad manager key", "<config>\n  <connectionmgr>127.0.0.1</connectionmgr>\n  <manager-key>nothex</manager-key>\n"
     "</config>\n", 3, "nothex"),
    ("bad invite", "<config>\n  <invite>natmesh-invite:v1/x</invite>\n</config>\n", 2, "invite"),
]
FPA, FPB = "5d41402abc4b2a76b9719d911017c592" * 2, "77af778b51abd4a3c51c5ddd97204a9c" * 2
LIST_SERVANT_CASES = [
    ("two plain managers", "<config>\n  <connectionmgr>10.0.0.1</connectionmgr>\n  <connectionmgr>10.0.0.2"
     "</connectionmgr>\n</config>\n", 3, "HOST,PORT,FINGERPRINT"),
    ("bad manager port", "<config>\n  <connectionmgr>10.0.0.1,8585,%s</connectionmgr>\n  <connectionmgr>m,085,%s"
     "</connectionmgr>\n</config>\n" % (FPA, FPB), 3, '"m,085,'),
    ("a manager twice", "<config>\n  <connectionmgr>10.0.0.1,8585,%s</connectionmgr>\n  <connectionmgr>10.0.0.1,"
     "8585,%s</connectionmgr>\n</config>\n" % (FPA, FPB), 3, "named twice"),
    ("six managers", "<config>\n%s</config>\n" % "".join("  <connectionmgr>10.0.0.%d,85,%s</connectionmgr>\n"
                                                         % (i, FPA) for i in range(1, 7)), 7, "at most 5"),
    ("no key to pin", "<config>\n  <connectionmgr>10.0.0.1,8585</connectionmgr>\n</config>\n", 2, "names no key"),
]
LIST_GOOD = ("<config>\n  <connectionmgr>10.0.0.1,8585,%s</connectionmgr>\n  <connectionmgr>10.0.0.2,8585,%s"
             "</connectionmgr>\n</config>\n" % (FPA, FPB.upper()))
KEY_MANAGER_CASES = [
    ("bad admission", "<manager>\n  <port>8585</port>\n  <admission>closed</admission>\n</manager>\n", 3, '"closed"'),
    ("bad relay key", "<manager>\n  <port>8585</port>\n  <relay-key>abc</relay-key>\n</manager>\n", 3, '"abc"'),
]


async def expect_config_error(h, prog, path, line, needle, what):
    rc, out, err = await h.run_tool(prog, ["--config", path, "--check-config"] if prog == "natmesh-manager"
                                    else ["--config", path, "--check-config", "--name", "t"])
    # Each case is independent: report them all rather than stop at the first.
    h.check(rc != 0, "%s, %s: exits non-zero (%d)" % (prog, what, rc), fatal=False)
    where = "%s:%d:" % (path, line) if line else path
    h.check(where in err, "%s, %s: the error names %s (%s)" % (prog, what, where.replace(h.dir + "/", ""),
                                                              err.strip().splitlines()[-1:] if err.strip() else "no stderr"),
            fatal=False)
    if needle:
        h.check(needle in err, "%s, %s: the error quotes %s" % (prog, what, needle), fatal=False)


async def test(h):
    for what, body, line, needle in SERVANT_CASES:
        path = h.write_config("bad-" + what.replace(" ", "-"), body=body)
        await expect_config_error(h, "natmesh-servant", path, line, needle, what)
    await expect_config_error(h, "natmesh-servant", h.dir + "/no-such-config.xml", None, None, "missing file")

    # The same error also stops a real start (not just --check-config), before it registers.
    path = h.write_config("bad-start", body=SERVANT_CASES[0][1])
    rc, out, err = await h.run_tool("natmesh-servant", ["--config", path, "--name", "t", "--manager-port", "1"])
    h.check(rc != 0 and ("%s:4:" % path) in err, "a servant started with a bad config exits non-zero naming %s:4" %
            path.replace(h.dir + "/", ""))

    good = h.write_config("good", body=GOOD % (MANAGER_KEY if h.secure else ""))
    rc, out, err = await h.run_tool("natmesh-servant", ["--config", good, "--check-config", "--name", "t"])
    h.check(rc == 0, "a good servant config passes --check-config (%d %s)" % (rc, err.strip()[-200:]))

    mpath = h.write_config("manager-hb", body="<manager>\n  <port>8585</port>\n  <heartbeat>0</heartbeat>\n</manager>\n")
    await expect_config_error(h, "natmesh-manager", mpath, 3, '"0"', "heartbeat 0")
    mpath = h.write_config("manager-unknown", body="<manager>\n  <listne>127.0.0.1</listne>\n</manager>\n")
    await expect_config_error(h, "natmesh-manager", mpath, 2, "<listne>", "unknown element")
    mgood = h.write_config("manager-good", body="<manager>\n  <port>8585</port>\n  <heartbeat>2</heartbeat>\n"
                           "  <timeout>6</timeout>\n</manager>\n")
    rc, out, err = await h.run_tool("natmesh-manager", ["--config", mgood, "--check-config"])
    h.check(rc == 0, "a good manager config passes --check-config (%d %s)" % (rc, err.strip()[-200:]))
    if not h.secure:
        return

    for what, body, line, needle in KEY_SERVANT_CASES:
        path = h.write_config("bad-" + what.replace(" ", "-"), body=body)
        await expect_config_error(h, "natmesh-servant", path, line, needle, what)
    for what, body, line, needle in KEY_MANAGER_CASES:
        path = h.write_config("manager-" + what.replace(" ", "-"), body=body)
        await expect_config_error(h, "natmesh-manager", path, line, needle, what)
    for what, body, line, needle in LIST_SERVANT_CASES:
        path = h.write_config("bad-" + what.replace(" ", "-"), body=body)
        await expect_config_error(h, "natmesh-servant", path, line, needle, what)
    listed = h.write_config("good-list", body=LIST_GOOD)
    rc, out, err = await h.run_tool("natmesh-servant", ["--config", listed, "--check-config", "--name", "t"])
    h.check(rc == 0, "two pinned managers, no invite or key, pass --check-config (%d %s)" % (rc, err.strip()[-200:]))
    nokey = h.write_config("no-key", body=GOOD % "")
    rc, out, err = await h.run_tool("natmesh-servant", ["--config", nokey, "--check-config", "--name", "t"])
    h.check(rc == 2 and "no manager key: pass --invite or --manager-key" in err,
            "a servant with neither invite nor manager key exits 2 saying so (%d %s)" % (rc, err.strip()[-200:]))


if __name__ == "__main__":
    main(test, "config_errors", budget=60)
