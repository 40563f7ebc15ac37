#!/usr/bin/env python3
"""The manager's default port, 85, needs privilege: without it the manager must say so
and tell the user how to pick another port, then exit non-zero.

Run as an unprivileged user (nobody, through setpriv when we are root) inside a network
namespace of its own (unshare -n), where ports below 1024 are privileged whatever the
host's net.ipv4.ip_unprivileged_port_start says, and nothing touches the host's network.
Since issue 9 the manager also needs its state directory (its key): one that user owns.
"""
import asyncio
import os
import pwd
import re
import shutil
import tempfile

from harness import STARTUP, CheckFailed, main


async def test(h):
    mgr = h.binary("natmesh-manager")
    inner = "ip link set lo up && sysctl -qw net.ipv4.ip_unprivileged_port_start=1024 && exec \"$@\""
    argv = [mgr, "--listen", "127.0.0.1", "--port", "85"]
    state = None
    if h.secure and os.geteuid() == 0:
        # nobody's own folder, outside the test's (which only root may enter).
        state = tempfile.mkdtemp(prefix="natmesh-privport-")
        nobody = pwd.getpwnam("nobody")
        os.chown(state, nobody.pw_uid, nobody.pw_gid)
        os.chmod(state, 0o700)
        argv += ["--state-dir", state]
    elif h.secure:
        argv += ["--state-dir", h.state_dir("manager")[0]]
    if os.geteuid() == 0:
        if not (shutil.which("unshare") and shutil.which("setpriv")):
            raise CheckFailed("unshare and setpriv (util-linux) are needed")
        argv = ["unshare", "-n", "sh", "-c", inner, "sh", "setpriv", "--reuid=nobody",
                "--regid=nogroup", "--clear-groups"] + argv
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=h.env())
    try:
        out, err = await asyncio.wait_for(proc.communicate(), STARTUP)
    finally:
        if state:
            shutil.rmtree(state, ignore_errors=True)
    err = err.decode(errors="replace")
    h.note("manager on port 85 without privilege -> exit %d: %s" % (proc.returncode, err.strip()))
    h.check(proc.returncode not in (0, None), "the manager exits non-zero")
    h.check(re.search(r"cannot listen on 127\.0\.0\.1:85: permission denied", err) is not None,
            "it says it cannot listen on port 85 for lack of permission")
    h.check(re.search(r"--port 8585", err) and re.search(r"--manager-port 8585", err),
            "it says how to choose another port, for the manager and for the servants")


if __name__ == "__main__":
    main(test, "privileged_port", budget=30)
