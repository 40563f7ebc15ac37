#!/usr/bin/env python3
"""The --metrics listener is read-only and bounded, and never holds the manager up:
  - GET and HEAD only: POST, PUT and DELETE get 405 with Allow: GET, HEAD; an unknown path
    gets 404; HEAD gets the headers without a body.
  - it holds at most 16 connections (NM_HTTP_CONNECTIONS_MAX): with 16 idle ones open, the
    next request gets no answer (it waits in the backlog or is refused), while the manager
    goes on registering a servant and answering natmesh-ctl; once the idle ones close, the
    listener serves again.
  - an --metrics value that is not [ADDR:]PORT is refused at start, saying so."""
import asyncio
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402
import webkit  # noqa: E402

LIMIT = 16


async def test(h):
    mport = h.free_port()
    m = await h.start_manager(extra=["--metrics", "127.0.0.1:%d" % mport])
    await h.expect(m.wait_log(r"metrics and status page on http://127\.0\.0\.1:%d/" % mport, 5),
                   "the manager serves metrics")

    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = await webkit.request(mport, "/metrics", method)
        h.check_eq((status, headers.get("Allow")), (405, "GET, HEAD"), "%s /metrics is refused" % method)
    status, _, _ = await webkit.request(mport, "/no/such/page")
    h.check_eq(status, 404, "an unknown path is not found")
    status, headers, body = await webkit.request(mport, "/metrics", "HEAD")
    h.check_eq((status, body), (200, b""), "HEAD /metrics: headers only")
    status, _, body = await webkit.request(mport, "/")
    h.check(status == 200 and b"<svg" in body, "GET / is the status page")
    h.check(re.findall(rb"""fetch\(\s*["']([^"']*)""", body) == [b"/status.json"] and
            not re.search(rb"\b(src|href)\s*=", body) and not re.search(rb"@import|url\((?!#)", body),
            "the page fetches /status.json and nothing else (no src, href, @import or url())")

    # -- the connection limit ---------------------------------------------------------------
    idle = []
    for _ in range(LIMIT):
        s = socket.create_connection(("127.0.0.1", mport), timeout=2)
        idle.append(s)
    await asyncio.sleep(0.3)  # let the HTTP thread accept them all (nothing to await on)
    extra = asyncio.ensure_future(webkit.request(mport, "/metrics", timeout=8))
    t0 = time.monotonic()
    # Meanwhile the manager is not held up: a servant registers and natmesh-ctl answers.
    alice = await h.start_servant("alice", m)
    root = await h.status(m)
    h.check([s.get("name") for s in root.iter("servant")] == ["alice"],
            "with the listener full the manager still registers a servant and answers status")
    h.check(time.monotonic() - t0 < 5, "... promptly (%.1fs)" % (time.monotonic() - t0))
    done, _ = await asyncio.wait([extra], timeout=1.0)
    answered = bool(done) and not extra.exception() and extra.result()[0] == 200
    h.check(not answered, "a request past the limit of %d connections is not served" % LIMIT)
    for s in idle:
        s.close()
    # Once the idle connections are gone the listener serves again (the waiting request
    # too, if it waited rather than being refused).
    try:
        status, _, body = await webkit.request(mport, "/metrics", timeout=5)
    except OSError as e:
        status, body = str(e), b""
    h.check_eq(status, 200, "after the idle connections closed, /metrics is served again")
    h.check(b"natmesh_manager_servants{" in body, "with the manager's metrics")
    if not extra.done():
        await asyncio.wait([extra], timeout=6)
    extra.cancel()

    # -- a bad --metrics value ---------------------------------------------------------------
    for bad in ("localhost:9100", "::1:9100", "127.0.0.1:99999", "x"):
        rc, out, err = await h.run_tool("natmesh-manager", ["--state-dir", m.info["state_dir"], "--open",
                                                            "--metrics", bad, "--check-config"])
        h.check(rc == 2 and "metrics" in err, "--metrics %s is refused (%d: %s)" % (bad, rc, err.strip()[-120:]))


if __name__ == "__main__":
    harness.main(test, "web_http_limits", budget=60)
