#!/usr/bin/env python3
"""Several managers, one admission (issue 14): invites, admitted keys and revocations shared
through the store, both managers admitting by invite (the default).

  step                                     who            must see
  1. a and b share redis; an invite made   b              learns the invite from a (its
     on a names b too (--also)                            hash, never the secret)
  2. a is SIGKILLed; s1 joins with the     s1, b          b admits s1 (not "unknown
     invite (a first, then b)                             invite"): s1 registers with b
  3. a comes back (same state); s1's key   b, s1          b learns the revocation, ends
     is revoked on a's state dir                          s1's session, refuses it after
     (natmesh-manager revoke)
  4. hostile facts written to the store    b, c           skipped and logged (a bad name on
     (the change log, the hashes)                         the log; a bad expiry, a bad key)
  5. c starts later on the same store      c              learns the invite, s1's key and
                                                          its revocation from the snapshot
                                                          and keeps them in its own file
"""
import asyncio
import os
import re
import signal

import harness
from harness import STARTUP, Skip, main
import store_fixture


def admission_file(m):
    path = os.path.join(m.info["state_dir"], "admission")
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


async def wait_file(h, m, pattern, what, timeout=10.0):
    """Polls m's admission file (saved in batches, every half second) for pattern."""
    end = asyncio.get_event_loop().time() + timeout
    while asyncio.get_event_loop().time() < end:
        if re.search(pattern, admission_file(m), re.M):
            return
        await asyncio.sleep(0.2)
    h.check(False, "%s (file: %r)" % (what, admission_file(m)[-400:]))


async def start_manager(h, name, url, short, **kw):
    m = await h.start_manager(name=name, admission="invite",
                              extra=["--store", url, "--manager-name", short], **kw)
    await h.expect(m.wait_log(r"store: overlay version \d+", 10), "%s read the store's snapshot" % name)
    return m


async def test(h):
    if not h.secure:
        raise Skip("admission needs the programs of issue 9")
    redis = await store_fixture.RedisServer(h).start()
    url = redis.url
    a = await start_manager(h, "mgr-a", url, "a")
    b = await start_manager(h, "mgr-b", url, "b")
    pa, pb, fpb = a.info["port"], b.info["port"], b.info["fp"]

    # 1. An invite made on a, naming b: b learns it (a re-reads its file on its sweep).
    invite = await h.invite(a, extra=["--also", "127.0.0.1,%d,%s" % (pb, fpb)])
    hit = await h.expect(b.wait_log(r"admission: invite ([0-9a-f]{16}) \(servant, 0 uses at most\) learned from "
                                    r"manager a\b", 10), "b learns a's invite through the store")
    invite_id = hit.group(1)
    await wait_file(h, b, r"^invite %s[0-9a-f]{48} 0 servant 0 0$" % invite_id,
                    "b keeps a's invite (its hash, role, expiry, max uses; its own use count) in its file")

    # 2. a dies; a new servant with the invite is admitted by b.
    a.info["killed"] = True
    a.signal(signal.SIGKILL)
    await a.wait_exit()
    bsince = b.mark("stderr")
    s1 = await h.start_servant("s1", a, invite=invite)
    await h.expect(b.wait_log(r"hello from s1 .*admitted as servant: valid invite %s" % invite_id, 5, bsince),
                   "b admitted s1 by a's invite")
    h.check(not b.find(r"unknown invite", "stderr", bsince), "b never said 'unknown invite'")
    fp1 = s1.info["key"].fp
    await wait_file(h, b, r"^admitted %s s1 servant %s$" % (fp1, invite_id),
                    "b keeps s1's key in its file, admitted via a's invite")

    # 3. a comes back and the operator revokes s1's key there: b ends s1's session.
    a2 = await start_manager(h, "mgr-a2", url, "a", port=pa, state_dir=a.info["state_dir"])
    await wait_file(h, a2, r"^admitted %s s1 servant %s$" % (fp1, invite_id),
                    "a, back, learns from the snapshot that b admitted s1")
    bsince = b.mark("stderr")
    ssince = s1.mark("stderr")
    rc, out, err = await h.run_tool("natmesh-manager", ["--state-dir", a.info["state_dir"], "revoke", fp1])
    h.check(rc == 0, "natmesh-manager revoke on a's state dir (%d: %s)" % (rc, (err or out).strip()[-200:]))
    await h.expect(b.wait_log(r"admission: key %s revoked by manager a\b" % fp1[:16], 10, bsince),
                   "b learns the revocation made on a")
    await h.expect(b.wait_log(r"s1 \(%s\): its key was revoked; ending its session" % s1.info["id"], 5, bsince),
                   "b ends s1's session")
    await h.expect(s1.wait_log(r"revoked", 10, ssince), "s1 is told its key was revoked")
    await wait_file(h, b, r"^revoked-key %s$" % fp1, "b keeps the revocation in its file")
    h.check(not re.search(r"^admitted %s" % fp1, admission_file(b), re.M), "b's file no longer admits s1")
    await asyncio.sleep(2.0)
    h.check(not s1.find(r"registered as s1\b", "stderr", ssince), "s1 is not admitted again anywhere")

    # 4. Hostile facts in the store (it is trusted like a manager, but parsed strictly): a
    # bad one on the change log is skipped by b, bad ones in the hashes by c at its start.
    prefix = (await redis.cli("--scan", "--pattern", "nm:*:adm:inv")).strip()[:-len("adm:inv")]
    h.check(prefix.startswith("nm:{"), "the store holds a's invite under %r" % prefix)
    bsince = b.mark("stderr")
    await redis.cli("XADD", prefix + "log", "*", "s", "0", "o", "a", "i", "f" * 64, "h", "evil",
                    "d", "bad\x01name servant -", "k", "k")
    await h.expect(b.wait_log(r"admission fact of manager evil skipped: 'k' f{16}: bad name", 5, bsince),
                   "b skips a hostile fact from the change log, and says so")
    await redis.cli("XADD", prefix + "log", "*", "s", "0", "o", "a", "i", "ab\nINFO forged", "h", "x\ny",
                    "d", "", "k", "r")
    await h.expect(b.wait_log(r"admission fact of manager \(a bad name\) skipped: 'r' ab\?INFO\?forged: bad fingerprint",
                              5, bsince), "b logs a hostile fact without its line breaks")
    await redis.cli("HSET", prefix + "adm:inv", "e" * 64, "soon servant 1")
    await redis.cli("HSET", prefix + "adm:key", "NOT-HEX", "x servant -")

    # 5. A third manager started later learns everything from the snapshot.
    c = await start_manager(h, "mgr-c", url, "c")
    await h.expect(c.wait_log(r"admission fact of manager \(the store\) skipped: 'i' e{16}: bad expiry", 10),
                   "c skips a hostile invite in the store")
    await h.expect(c.wait_log(r"admission fact of manager \(the store\) skipped: 'k' NOT-HEX: bad fingerprint", 10),
                   "c skips a hostile key in the store")
    await h.expect(c.wait_log(r"admission: invite %s \(servant, 0 uses at most\) learned from manager \(the store\)"
                              % invite_id, 10), "c learns the invite from the snapshot")
    await h.expect(c.wait_log(r"admission: key %s revoked by manager \(the store\)" % fp1[:16], 10),
                   "c learns the revocation from the snapshot")
    await wait_file(h, c, r"^invite %s[0-9a-f]{48} 0 servant 0 0$" % invite_id, "c keeps a's invite in its file")
    await wait_file(h, c, r"^revoked-key %s$" % fp1, "c keeps the revocation in its file")
    h.check(not re.search(r"^admitted %s" % fp1, admission_file(c), re.M), "c does not admit s1")


if __name__ == "__main__":
    main(test, "managers_admission", budget=120)
