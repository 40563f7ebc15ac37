#!/usr/bin/env python3
"""The natmesh demo: a connection manager and three servants on loopback chat with each
other; the transcript shows who typed what and what each servant displayed. Every node keeps
its key in a state directory of its own (a temporary folder here); the manager makes an
invite, and each servant joins with it, over TLS pinned to the manager's key."""
import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

NAMES = ["alice", "bob", "carol"]
LINES = {
    "alice": "hello from alice, on the open internet",
    "bob": "bob here, the manager gave me a port of my own",
    "carol": "carol says hi to both of you",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, name, proc):
        self.name, self.proc = name, proc
        self.out, self.err = [], []
        self.waiters = []

    async def pump(self, stream, sink):
        while True:
            raw = await stream.readline()
            if not raw:
                return
            sink.append(raw.decode(errors="replace").rstrip("\n"))
            for w in list(self.waiters):
                w.set()

    async def wait_for(self, sink, pattern, timeout=10.0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in sink:
                if rx.search(line):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no line matching {pattern!r}")
            ev = asyncio.Event()
            self.waiters.append(ev)
            try:
                await asyncio.wait_for(ev.wait(), left)
            except asyncio.TimeoutError:
                pass
            finally:
                self.waiters.remove(ev)


async def start(name, argv):
    p = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    h = Proc(name, p)
    h.tasks = [asyncio.ensure_future(h.pump(p.stdout, h.out)),
               asyncio.ensure_future(h.pump(p.stderr, h.err))]
    return h


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", required=True, help="folder of the natmesh programs (BUILD/bin)")
    args = ap.parse_args()
    mgr_bin = os.path.join(args.bindir, "natmesh-manager")
    sv_bin = os.path.join(args.bindir, "natmesh-servant")
    ctl_bin = os.path.join(args.bindir, "natmesh-ctl")
    port = free_port()
    state = tempfile.mkdtemp(prefix="natmesh-demo-")
    mgr_state = os.path.join(state, "manager")
    print(f"== natmesh demo: manager on 127.0.0.1:{port}, servants {', '.join(NAMES)}\n")
    procs = []
    try:
        # One invite for the three of them: it names the manager's address and key.
        invite = subprocess.run([mgr_bin, "--state-dir", mgr_state, "--port", str(port), "invite",
                                 "--address", f"127.0.0.1:{port}"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        print(f"$ natmesh-manager --state-dir DIR invite --address 127.0.0.1:{port}\n{invite}\n")
        mgr = await start("manager", [mgr_bin, "--listen", "127.0.0.1", "--port", str(port),
                                      "--heartbeat", "2", "--timeout", "6", "--state-dir", mgr_state])
        procs.append(mgr)
        await mgr.wait_for(mgr.err, "listening on")
        servants = {}
        for n in NAMES:
            servants[n] = await start(n, [sv_bin, "--name", n, "--invite", invite,
                                          "--state-dir", os.path.join(state, n)])
            procs.append(servants[n])
        for s in servants.values():
            await s.wait_for(s.err, rf"peer list version \d+ \({len(NAMES)} peers\)")
            await s.wait_for(s.err, r"connected to .*", 10)
        # Every servant must have an open connection to each other before we type.
        for s in servants.values():
            for other in NAMES:
                if other != s.name:
                    await s.wait_for(s.err, rf"connected to {other} at")
        print("-- all three registered; each has the others in its peer list\n")
        for n in NAMES:
            print(f"[{n} types] {LINES[n]}")
            servants[n].proc.stdin.write((LINES[n] + "\n").encode())
            await servants[n].proc.stdin.drain()
            for other in NAMES:
                if other != n:
                    line = await servants[other].wait_for(servants[other].out, re.escape(f"{n}: {LINES[n]}"))
                    print(f"    {other} shows  {line}")
        print()
        s = servants["alice"]
        s.proc.stdin.write(b"/peers\n")
        await s.proc.stdin.drain()
        await s.wait_for(s.out, r"^end of peers")
        print("[alice types] /peers")
        for line in s.out:
            if "peer" in line:
                print("    " + line)
        print()
        if os.path.exists(ctl_bin):
            print(f"$ natmesh-ctl --manager 127.0.0.1:{port} --state-dir DIR status")
            ctl = await asyncio.create_subprocess_exec(
                ctl_bin, "--manager", f"127.0.0.1:{port}", "--state-dir", mgr_state, "status",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(ctl.communicate(), 10)
            print(out.decode(errors="replace"))
        for n in NAMES:
            servants[n].proc.stdin.write(b"/quit\n")
            await servants[n].proc.stdin.drain()
        for n in NAMES:
            await asyncio.wait_for(servants[n].proc.wait(), 10)
        await mgr.wait_for(mgr.err, "left: carol")
        print("-- all servants left cleanly; the manager saw each leave")
        return 0
    except (TimeoutError, asyncio.TimeoutError) as e:
        print(f"demo failed: {e}", file=sys.stderr)
        for p in procs:
            print(f"--- {p.name} stderr ---", file=sys.stderr)
            print("\n".join(p.err[-20:]), file=sys.stderr)
        return 1
    except subprocess.SubprocessError as e:
        print(f"demo failed: natmesh-manager invite: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(state, ignore_errors=True)
        for p in procs:
            if p.proc.returncode is None:
                p.proc.terminate()
                try:
                    await asyncio.wait_for(p.proc.wait(), 5)
                except asyncio.TimeoutError:
                    p.proc.kill()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
