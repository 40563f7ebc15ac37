#!/usr/bin/env python3
"""tcp_hold.py: long-lived TCP connections for netsim's own tests of reset-connection
(Python 3 stdlib only).

    tcp_hold.py server PORT        accepts connections and keeps them; every 200 ms it writes
                                   "tick" on each, so a peer whose socket is gone answers
                                   with an RST (unless something drops it)
    tcp_hold.py client ADDR PORT [dual]
                                   connects, reads until the connection fails, says how, and
                                   connects again 200 ms later, like a servant to its manager;
                                   ADDR may be IPv6; with "dual" an IPv4 ADDR is reached from
                                   an IPv6 socket (v4-mapped), as a dual-stack program does

The server listens dual-stack on :: (IPv4 peers arrive v4-mapped), or on 0.0.0.0 where the
host has no IPv6.

One line per event, so a scenario can wait for it:
    server: "listening", "accepted IP:PORT", "closed IP:PORT", "reset (ERRNO) IP:PORT"
    client: "connected from PORT", "aborted PORT: ERRNO", "closed PORT"
"""

import errno
import select
import socket
import sys
import time


def say(text):
    print(text, flush=True)


def server(port):
    try:
        lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        lsock.bind(("::", port))
    except OSError:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("0.0.0.0", port))
    lsock.listen(16)
    say("listening")
    conns = {}
    next_tick = time.monotonic() + 0.2

    def gone(c, how):
        say(f"{how} {conns.pop(c)}")
        c.close()

    while True:
        wait = max(0.0, next_tick - time.monotonic())
        ready, _, _ = select.select([lsock] + list(conns), [], [], wait)
        for s in ready:
            if s is lsock:
                c, addr = lsock.accept()
                conns[c] = f"{addr[0]}:{addr[1]}"
                say(f"accepted {conns[c]}")
                continue
            try:
                if not s.recv(4096):
                    gone(s, "closed")
            except OSError as e:
                gone(s, f"reset ({errno.errorcode.get(e.errno, e.errno)})")
        if time.monotonic() >= next_tick:
            next_tick = time.monotonic() + 0.2
            for c in list(conns):
                try:
                    c.send(b"tick\n")
                except OSError as e:
                    gone(c, f"reset ({errno.errorcode.get(e.errno, e.errno)})")


def client(addr, port, dual=False):
    if ":" in addr:
        family = socket.AF_INET6
    elif dual:
        family, addr = socket.AF_INET6, "::ffff:" + addr
    else:
        family = socket.AF_INET
    while True:
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.connect((addr, port))
        except OSError as e:
            say(f"cannot connect: {errno.errorcode.get(e.errno, e.errno)}")
            s.close()
            time.sleep(0.2)
            continue
        local = s.getsockname()[1]
        say(f"connected from {local}")
        try:
            while s.recv(4096):
                pass
            say(f"closed {local}")
        except OSError as e:
            say(f"aborted {local}: {errno.errorcode.get(e.errno, e.errno)}")
        s.close()
        time.sleep(0.2)


def main(argv):
    if len(argv) == 3 and argv[1] == "server":
        server(int(argv[2]))
    elif len(argv) in (4, 5) and argv[1] == "client" and argv[4:] in ([], ["dual"]):
        client(argv[2], int(argv[3]), argv[4:] == ["dual"])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
