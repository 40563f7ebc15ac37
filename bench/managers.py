#!/usr/bin/env python3
"""Several managers sharing a store, against one manager (issue 14, scripts/bench.sh --managers;
docs/performance.md, "Several managers sharing a store").

For each N of --sizes (default 50,000) it runs, in this order and each bounded in time:
  one:    one natmesh-manager (no store) and one natmesh-loadgen with N1 servants, N1 = N or,
          when N is more than one manager can hold here, as many as it can (--one-max:
          scripts/bench.sh's largest N, the hard file limit less 1,000, at most 19,000);
  shared: a redis-server, --managers (3) natmesh-managers sharing it (--store, --manager-name)
          and one natmesh-loadgen per manager with N/3 servants each, started together.
With --views 1 (the default) every manager keeps its default --mesh-above (1,000): past it
the overlay is a bounded mesh, drawn by the manager holding the store's lease and followed
by the others, and the load generators' servants say views="1" (as natmesh-servant does):
each holds its view. --views 0 is the older comparison: --mesh-above above N on both sides,
every servant holds the whole list.
Each manager is given --max-servants of its share + 64 (16,731 at 50,000): with a store it
caps the sessions a manager holds, not its list, which holds every servant of the overlay.

The load generators run attached (natmesh-loadgen --manager-port, which starts no manager and
takes its steps from stdin: bench/loadgen.c, run_attached). Measured on both sides:
  - re-registration of the N from nothing: from the earliest "go" to the last session of the
    slowest load generator holding its list (its view), and until the overlay settled: with
    views, every servant holds a set of neighbours and no list, delta or neighbours frame
    came for --settle-quiet ms, twice in a row; without, every servant holds version N;
  - the managers' CPU (utime + stime, summed) over the registration until settled, and the
    redis-server's; the descriptors each process holds; the managers' VmRSS (settled, after
    the heartbeat window, and the largest seen, sampled every 0.5 s);
  - heartbeats answered per second, summed over the load generators, their windows run at
    once (each process's mean over its window, not its best part: the parts of separate
    processes do not coincide);
  - the store's load, from redis-server's INFO commandstats (our own INFO, HLEN, XLEN left
    out): requests (what its clients send: a script call, an XREAD, ...) and commands (those
    plus what the scripts run inside them), per second while the N heartbeat and over two
    quiet intervals (--quiet s: nothing changes, nobody heartbeats), right after settling
    and after the heartbeat window, each printed with its busiest commands; and requests
    per change: one extra servant joins and leaves through the first manager (--changes
    times), the requests over that less the second quiet rate, per change.
A memory guard stops a side's managers when one passes --max-rss MiB (default 6,144) or the
machine's MemAvailable falls under --min-available (default 2,048): it prints the manager's
stack (gdb, when installed), and the side gives no figures but managers_memory_guard.

Rows appended to --csv (figure,n,value,unit,baseline,ratio), n = N (the total). When N1 < N
the times are per 1,000 servants registered on both sides (name ..._per_1000, unit s/1000):
  managers_one_servants            (when N1 < N) N1; baseline N
  managers_register_seconds[_per_1000]      shared; baseline: one manager
  managers_settle_seconds[_per_1000]        until settled (above); baseline: one manager
  managers_settle_incomplete       (instead, when a side's did not within the bound) 1 for the
                                   shared side; baseline: 1 for the one manager
  managers_register_cpu_seconds[_per_1000]  the managers' CPU, summed; baseline: one manager's
  managers_store_cpu_seconds       the redis-server's over the same; baseline: the managers'
  managers_list_bytes_per_servant  list, delta and neighbours frame bytes each servant
                                   received over the registration (plaintext); baseline:
                                   with one manager
  managers_fds_per_manager         the most descriptors a manager held; baseline ulimit -Hn
  managers_heartbeat_rate          acks/s summed; baseline: one manager's
  managers_rss_per_manager         the largest manager's VmRSS after the heartbeat window,
                                   MiB; baseline: one manager's
  managers_rss_kib_per_servant     the same per servant it holds (KiB); baseline: one's
  managers_rss_peak_per_manager    the largest VmRSS sampled over the side; baseline: one's
  managers_rss_all                 VmRSS of every process of the side (managers, load
                                   generators, redis-server), MiB; baseline: MemTotal
  managers_store_ops_per_sec       store requests/s while heartbeating; baseline: heartbeats
                                   answered per second over the same window (ratio: requests
                                   per heartbeat)
  managers_store_commands_per_sec  commands/s (scripts' included) meanwhile; baseline N (ratio:
                                   per servant per second)
  managers_store_ops_idle_per_sec  requests/s over the quiet interval right after settling;
                                   baseline: the number of managers
  managers_store_ops_idle_late_per_sec  the same after the heartbeat window
  managers_store_ops_per_change    requests per join or leave; baseline: at the smallest N
  managers_store_log_per_change    the change log's entries of op u (put), l (leave) and n
                                   (the mesh's sets) per join or leave; baseline 1 (the
                                   change's own entry)
  managers_register_incomplete     (only when short) servants registered; baseline N
  managers_lost_after_register     (only when some were) sessions registered, then closed
                                   before settling; baseline N (managers_one_...: the same)
  managers_one_register_incomplete the same for one manager (baseline N1)
  managers_memory_guard            1 when the guard stopped the shared side; baseline 0
  managers_incomplete, managers_one_incomplete  1 when a step of that side failed or was not
                                   done in its bound (the reason is printed)
A step that does not complete in its bound is recorded so, never waited for.

  python3 bench/managers.py --bindir build-bench/bin [--sizes 50000] [--managers 3]
                            [--one-max 19000] [--views 1] [--seconds 3]
                            [--register-timeout 120] [--csv FILE]
"""
import argparse
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

STARTUP = 20.0
# Commands only a client sends (never a script): what counts as a request to the store.
TOP_LEVEL = {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "xread", "xreadgroup",
             "script", "role", "ping", "hello", "auth", "select", "client", "sentinel", "subscribe"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_cpu(pid):
    """utime + stime of pid in seconds, or 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def proc_rss_mib(pid):
    """VmRSS of pid in MiB, or 0 when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def meminfo_mib(key):
    """A /proc/meminfo line's value (MemAvailable, MemTotal) in MiB, 0 when absent."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def mem_available_mib():
    return meminfo_mib("MemAvailable")


class MemoryGuard:
    """Watches the side's managers: when one's VmRSS passes max_mib, or the machine has less
    than min_avail_mib available, it says so (with the manager's stack when gdb is there),
    and kills the side's managers, so that the load generators' steps end and the machine
    (shared with others) is not driven out of memory. What it saw goes to res["memory"]."""

    def __init__(self, side, res, label, max_mib, min_avail_mib):
        self.side, self.res, self.label = side, res, label
        self.max_mib, self.min_avail_mib = max_mib, min_avail_mib
        self.done = threading.Event()
        self.peak = [0.0] * len(side.managers)
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        while not self.done.wait(0.5):
            rss = [proc_rss_mib(m.p.pid) for m in self.side.managers]
            self.peak = [max(a, b) for a, b in zip(self.peak, rss)]
            avail = mem_available_mib()
            worst = max(range(len(rss)), key=lambda i: rss[i])
            if rss[worst] <= self.max_mib and avail >= self.min_avail_mib:
                continue
            m = self.side.managers[worst]
            self.res["memory"] = "%s at %.0f MiB VmRSS (MemAvailable %.0f MiB)" % (m.name, rss[worst], avail)
            print("  %s: memory guard: %s: the managers are stopped" % (self.label, self.res["memory"]), flush=True)
            if shutil.which("gdb"):
                try:
                    # The stack, and when it is in a flush the manager's mesh state (what decides
                    # between a view and the whole list: publish.c, views.c).
                    ex = ["bt 20", "frame function mgr_publish_flush", "print m->list.count", "print m->mesh.count",
                          "print m->mesh_on", "print m->mesh_ready", "print m->mesh_follows", "print m->mesh_leading",
                          "print m->mesh_switched", "print m->cfg.mesh_above"]
                    bt = subprocess.run(["gdb", "-p", str(m.p.pid), "-batch"] + [w for e in ex for w in ("-ex", e)],
                                        capture_output=True, text=True, timeout=60).stdout
                    names = iter(ex[2:])
                    for line in bt.splitlines():
                        if line.startswith("$"):
                            print("    %s: %s = %s" % (m.name, next(names, "?")[6:], line.split("=", 1)[-1].strip()),
                                  flush=True)
                        elif line.startswith("#"):
                            print("    %s: %s" % (m.name, line[:220]), flush=True)
                except (subprocess.SubprocessError, OSError):
                    pass
            for mm in self.side.managers:
                try:
                    os.killpg(mm.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return

    def stop(self):
        self.done.set()


def mem_total_mib():
    return meminfo_mib("MemTotal")


class Child:
    """A process whose stdout lines are read by a thread into a queue."""

    def __init__(self, name, argv, env=None, stdin=False, log=None):
        self.name = name
        out = open(log, "w") if log else subprocess.PIPE
        self.p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, env=env, text=True,
                                  start_new_session=True)
        self.lines = queue.Queue()
        self.seen = []
        if not log:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout):
        """The next stdout line starting with prefix, as a dict of its key=value words, or
        None at the end of output or after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            self.seen.append(line)
            if line.startswith(prefix):
                return dict(w.split("=", 1) for w in line[len(prefix):].split() if "=" in w)

    def send(self, word):
        try:
            self.p.stdin.write(word + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait()


class Redis:
    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir)
        self.child = Child("redis", ["redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                                     "--logfile", "", "--protected-mode", "no"])
        if not self._ready():
            raise RuntimeError("redis-server did not start")

    def _ready(self):
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            try:
                line = self.child.lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                return False
            if line is None:
                return False
            if "Ready to accept connections" in line:
                return True
        return False

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
                           capture_output=True, text=True, timeout=10)
        return r.stdout

    def by_command(self):
        """Calls so far per command (INFO commandstats), ours left out."""
        out = {}
        for line in self.cli("INFO", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, rest = line[len("cmdstat_"):].split(":", 1)
                if name not in ("info", "hlen", "xlen"):
                    out[name] = int(rest.split(",")[0].split("=")[1])
        return out

    def last_id(self):
        """The change log's newest entry id ("0-0" when empty)."""
        words = self.cli("XREVRANGE", "nm:{natmesh}:log", "+", "-", "COUNT", 1).split("\n")
        return words[0] if words and words[0] else "0-0"

    def log_ops(self, count, after=None):
        """The change log's entries by op ('u' put, 'l' leave, 'a' admission fact, 'n' mesh
        sets, ...): the last count, or those after the entry id after (at most 100,000;
        the log is trimmed to about that many, so its length says nothing of its growth)."""
        ops = {}
        if after is not None:
            words = self.cli("XRANGE", "nm:{natmesh}:log", "(" + after, "+", "COUNT", 100000).split("\n")
        elif count <= 0:
            return ops
        else:
            words = self.cli("XREVRANGE", "nm:{natmesh}:log", "+", "-", "COUNT", count).split("\n")
        for i, w in enumerate(words[:-1]):
            if w == "o":
                ops[words[i + 1]] = ops.get(words[i + 1], 0) + 1
        return ops

    def xlen(self):
        try:
            return int(self.cli("XLEN", "nm:{natmesh}:log").strip() or 0)
        except ValueError:
            return -1

    def counts(self):
        """(requests, commands) so far: requests are what the store's clients sent (a script
        is one, an XREAD one); commands add those the scripts ran inside (a renewal's HGET
        per servant). Ours (INFO, HLEN) are left out."""
        requests = commands = xadd = 0
        for line in self.cli("INFO", "commandstats").splitlines():
            if not line.startswith("cmdstat_"):
                continue
            name, rest = line[len("cmdstat_"):].split(":", 1)
            calls = int(rest.split(",")[0].split("=")[1])
            if name in ("info", "hlen", "xlen"):
                continue
            commands += calls
            if name.split("|")[0] in TOP_LEVEL:
                requests += calls
            if name == "xadd":
                xadd += calls
        return requests, commands, xadd


class Side:
    """Managers (one, or several sharing redis) and a load generator per manager."""

    def __init__(self, a, tmp, n, k, redis, total):
        self.a, self.tmp, self.n, self.k, self.redis, self.total = a, tmp, n, k, redis, total
        self.managers, self.ports, self.loadgens = [], [], []
        try:
            self._start(a, tmp, n, k, redis, total)
        except BaseException:
            self.stop()  # what did start is stopped: the caller has no side to stop
            raise

    def _start(self, a, tmp, n, k, redis, total):
        env = dict(os.environ, NATMESH_LOG="warn")
        # The default heartbeat (5 s): the sweep, and with it the store's renewals and the
        # announcement, runs every quarter of it. A timeout of an hour: the simulated servants
        # heartbeat only in the measured window, and must not be dropped between steps.
        # --views 1: the default --mesh-above (1,000), a bounded mesh past it; --views 0: the
        # full mesh on both sides (--mesh-above above N).
        mesh_above = None if a.views else max(1000, 2 * n)
        for i in range(k):
            port = free_port()
            sd = os.path.join(tmp, "mgr%d" % i)
            argv = [os.path.join(a.bindir, "natmesh-manager"), "--open", "--state-dir", sd,
                    "--listen", "127.0.0.1", "--port", port, "--heartbeat", 5, "--timeout", 3600,
                    "--max-unauth", 4096, "--max-unauth-per-address", 1024,
                    # Its share of the sessions (with a store, --max-servants caps the
                    # sessions a manager holds; its list, every manager's servants, is bounded
                    # by the store's 1,000,000), and the one manager all N.
                    "--max-servants", (total + k - 1) // k + 64]
            if mesh_above is not None:
                argv += ["--mesh-above", mesh_above]
            if redis:
                argv += ["--store", "redis://127.0.0.1:%d" % redis.port, "--manager-name", "m%d" % i]
            self.managers.append(Child("manager%d" % i, argv, env=env, log=sd + ".log"))
            self.ports.append(port)
        for port, m in zip(self.ports, self.managers):
            if not self._listening(port, m):
                raise RuntimeError("%s did not listen on %d (see its log)" % (m.name, port))
        if redis:  # every manager announced itself: it reads and writes the store
            deadline = time.monotonic() + STARTUP
            while int(redis.cli("HLEN", "nm:{natmesh}:managers").strip() or 0) < k:
                if time.monotonic() > deadline:
                    raise RuntimeError("the managers did not all announce themselves in the store")
                time.sleep(0.1)  # polling the store: it offers no readiness signal of theirs
        share = [n // k + (1 if i < n % k else 0) for i in range(k)]
        for i, (port, count) in enumerate(zip(self.ports, share)):
            self.loadgens.append(Child("loadgen%d" % i, [
                a.loadgen, "--manager-port", port, "--n", count, "--seconds", a.seconds,
                "--register-timeout", a.register_timeout, "--views", a.views, "--name-prefix", "m%d-" % i],
                stdin=True))
        self.share = share

    def _listening(self, port, m):
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            if m.p.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return True
            except OSError:
                time.sleep(0.05)  # a child that offers no readiness signal but its port
        return False

    def all_expect(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        return [lg.expect(prefix, max(0.1, deadline - time.monotonic())) for lg in self.loadgens]

    def cpu(self):
        return sum(proc_cpu(m.p.pid) for m in self.managers)

    def rss_mib(self):
        """VmRSS of each manager and of each load generator, MiB."""
        return [proc_rss_mib(m.p.pid) for m in self.managers], [proc_rss_mib(lg.p.pid) for lg in self.loadgens]

    def fds(self):
        """Open descriptors of each manager and of each load generator."""
        return [proc_fds(m.p.pid) for m in self.managers], [proc_fds(lg.p.pid) for lg in self.loadgens]

    def stop(self):
        for lg in self.loadgens:
            lg.send("quit")
        for lg in self.loadgens:
            try:
                lg.p.wait(10)
            except subprocess.TimeoutExpired:
                pass
            lg.stop()
        for m in self.managers:
            m.stop()


def quiet(redis, a, label, when):
    """The store's requests and commands per second over a.quiet seconds in which nothing
    changes and nobody heartbeats; prints the busiest commands and the change log's growth."""
    id0 = redis.last_id()  # before the counts: our own XREVRANGE is not the managers'
    b0, x0 = redis.by_command(), redis.xlen()
    c0, q0 = redis.counts(), time.monotonic()
    time.sleep(a.quiet)  # a measured interval, not a wait for an event
    c1, dt = redis.counts(), time.monotonic() - q0
    b1, x1 = redis.by_command(), redis.xlen()
    top = sorted(((b1[c] - b0.get(c, 0), c) for c in b1), reverse=True)[:6]
    ops = redis.log_ops(0, after=id0)
    print("  %s: quiet %.1f s %s: %.1f requests/s; the store's busiest commands %s; the change log went from "
          "%d to %d entries%s" % (label, dt, when, (c1[0] - c0[0]) / dt,
                                  ", ".join("%s %d" % (c, d) for d, c in top if d > 0) or "none", x0, x1,
                                  " (%d new, by op: %s)" % (sum(ops.values()), ", ".join(
                                      "%s %d" % kv for kv in sorted(ops.items()))) if ops else ""), flush=True)
    return (c1[0] - c0[0]) / dt, (c1[1] - c0[1]) / dt


def settle_views(side, a, t0):
    """Views (a bounded mesh): every load generator until each of its sessions holds a set of
    neighbours and nothing came for a.settle_quiet ms; then again, until a round in which no
    frame came after the previous one (a manager may publish a set after another load
    generator went quiet). Returns (ok, settle seconds from t0, lines of the last round)."""
    lasts = None
    bound_ms = a.settle_timeout * 1000
    for _ in range(4):
        for lg in side.loadgens:
            lg.send("settle 0 %d %d" % (a.settle_quiet, bound_ms))
        setl = side.all_expect("lg: settled", a.settle_timeout + 30)
        if None in setl:
            return False, None, setl
        now = [float(s["last"]) for s in setl]
        ok = all(s["ok"] == "1" for s in setl)
        if not ok or (lasts is not None and now == lasts):
            break
        lasts = now
        bound_ms = 10000  # a second round: nothing more should come
    return ok, max(now) - t0, setl


def run_side(a, n, k, shared, total=None):
    """The figures of one side with n servants in all, as a dict."""
    tmp = tempfile.mkdtemp(prefix="natmesh-managers.")
    redis = side = guard = None
    res = {"n": n, "k": k}
    label = "%d managers + redis" % k if shared else "one manager"
    try:
        redis = Redis(tmp) if shared else None
        side = Side(a, tmp, n, k, redis, total or n)
        guard = MemoryGuard(side, res, label, a.max_rss, a.min_available)
        k0 = time.monotonic()
        if None in side.all_expect("lg: keys", 180):
            raise RuntimeError("a load generator did not make its keys")
        res["keys_s"] = time.monotonic() - k0
        cpu0 = side.cpu()
        rcpu0 = proc_cpu(redis.child.p.pid) if redis else 0
        for lg in side.loadgens:
            lg.send("go")
        regs = side.all_expect("lg: registered", a.register_timeout + 30)
        if None in regs:
            raise RuntimeError("a load generator did not report its registration")
        t0 = min(float(r["t0"]) for r in regs)
        res["registered"] = sum(int(r["ready"]) for r in regs)
        res["register_s"] = max(float(r["t1"]) for r in regs) - t0
        res["lost"] = sum(int(r["lost"]) for r in regs) + sum(int(r["refused"]) for r in regs)
        for lg in side.loadgens:  # the load generator's own words (they hold spaces)
            line = next((l for l in reversed(lg.seen) if l.startswith("lg: registered")), "")
            if " refusal=" in line or " why=" in line:
                print("  %s: %s: %s" % (label, lg.name, line[line.find(" refusal=" if " refusal=" in line else " why=") + 1:]),
                      flush=True)
        if "memory" in res:
            raise RuntimeError("the memory guard stopped the managers while they registered: " + res["memory"])
        res["fds"] = side.fds()
        if a.views:
            # Settled: every servant holds its view (a set of neighbours) and nothing more came.
            ok, settle_s, setl = settle_views(side, a, t0)
            if None in setl:
                raise RuntimeError("a load generator did not settle")
            res["settle_s"] = settle_s
            held = sum(int(s["held"]) for s in setl)
            ready = sum(int(s["ready"]) for s in setl)
            res["lost_later"] = res["registered"] - ready  # sessions closed after registering
            res["converged"] = 1 if ok and held == ready else 0
            dmin = min(int(s["dmin"]) for s in setl)
            dmax = max(int(s["dmax"]) for s in setl)
            res["list_bytes"] = sum(int(s["list_bytes"]) + int(s["delta_bytes"]) + int(s["nb_bytes"]) for s in setl)
            what = "%d of %d servants hold neighbours (%d-%d each)" % (held, ready, dmin, dmax)
        else:
            # Settled: every servant holds the overlay's version after the N joins (the store,
            # or the one manager, starts empty: one version per join), whichever manager each
            # change came through.
            for lg in side.loadgens:
                lg.send("settle %d" % n)
            setl = side.all_expect("lg: settled", a.register_timeout + 60)
            if None in setl:
                raise RuntimeError("a load generator did not settle")
            res["settle_s"] = max(float(s["last"]) for s in setl) - t0
            # Every servant holds the same list version, the overlay's newest: the deltas of
            # the other managers' servants reached it.
            vers = [int(s[k]) for s in setl for k in ("vmin", "vmax") if int(s[k]) >= 0]
            res["converged"] = 1 if all(s["ok"] == "1" for s in setl) and vers and min(vers) == max(vers) else 0
            res["list_bytes"] = sum(int(s["list_bytes"]) + int(s["delta_bytes"]) for s in setl)
            what = "list versions %s" % ("all %d" % vers[0] if res["converged"] else
                                          "differ: %d-%d" % (min(vers), max(vers)) if vers else "none")
        if "memory" in res:
            raise RuntimeError("the memory guard stopped the managers while they settled: " + res["memory"])
        res["cpu_s"] = side.cpu() - cpu0
        res["store_cpu_s"] = proc_cpu(redis.child.p.pid) - rcpu0 if redis else 0
        mr, lr = side.rss_mib()
        res["rss_settled"] = mr
        print("  %s: keys made in %.1f s; %d of %d registered in %.2f s (slowest of %d), settled at %.2f s (%s); "
              "%.0f MB of lists, deltas and neighbours sent to them; managers' CPU %.2f s%s"
              % (label, res["keys_s"], res["registered"], n, res["register_s"], k, res["settle_s"], what,
                 res["list_bytes"] / 1e6, res["cpu_s"],
                 ", redis-server's %.2f s" % res["store_cpu_s"] if redis else ""), flush=True)
        print("  %s: descriptors open after registering: managers %s, load generators %s (ulimit -Hn %d); "
              "VmRSS settled: managers %s MiB, load generators %s MiB" % (
                  label, res["fds"][0], res["fds"][1], resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                  " ".join("%.0f" % x for x in mr), " ".join("%.0f" % x for x in lr)), flush=True)
        if redis:  # a quiet interval: what the managers send the store when nothing happens
            res["idle_ops_s"], res["idle_cmds_s"] = quiet(redis, a, label, "right after settling")
            c0, w0 = redis.counts(), time.monotonic()
        for lg in side.loadgens:
            lg.send("hb")
        hbs = side.all_expect("lg: heartbeats", a.seconds + 60)
        if redis:
            c1, dt = redis.counts(), time.monotonic() - w0
            res["store_ops_s"], res["store_cmds_s"] = ((c1[i] - c0[i]) / dt for i in (0, 1))
        if None in hbs or "memory" in res:
            raise RuntimeError("a load generator did not finish its heartbeats" if "memory" not in res else
                               "the memory guard stopped the managers: " + res["memory"])
        res["hb_rate"] = sum(float(h["mean"]) for h in hbs)
        res["hb_complete"] = all(h["complete"] == "1" for h in hbs)
        if not res["hb_complete"]:
            print("  %s: some heartbeats were not answered" % label, flush=True)
        if not a.views:  # with views each servant's version is its view's own
            vers = [int(h[k]) for h in hbs for k in ("vmin", "vmax") if int(h.get(k, -1)) >= 0]
            res["converged_later"] = 1 if vers and min(vers) == max(vers) else 0
            print("  %s: list versions after the heartbeat window: %s" % (
                label, "all %d" % vers[0] if res["converged_later"] else
                "differ: %d-%d" % (min(vers), max(vers)) if vers else "none"), flush=True)
        mr, lr = side.rss_mib()
        res["rss"] = mr
        res["rss_all"] = sum(mr) + sum(lr) + (proc_rss_mib(redis.child.p.pid) if redis else 0)
        print("  %s: %.0f heartbeats/s answered (sum of %d)%s" % (
            label, res["hb_rate"], k, "; store meanwhile %.1f requests/s (%.0f commands/s with those "
            "scripts ran), quiet %.1f requests/s (%.0f commands/s)" % (
                res["store_ops_s"], res["store_cmds_s"], res["idle_ops_s"], res["idle_cmds_s"])
            if redis else ""), flush=True)
        print("  %s: VmRSS after the heartbeat window: managers %s MiB, load generators %s MiB%s; "
              "%.0f MiB in all" % (label, " ".join("%.0f" % x for x in mr), " ".join("%.0f" % x for x in lr),
                                   ", redis-server %.0f MiB" % proc_rss_mib(redis.child.p.pid) if redis else "",
                                   res["rss_all"]), flush=True)
        if redis:  # joins and leaves of one extra servant through the first manager
            # The quiet rate again, right before: what the changes are measured against.
            res["idle_late_ops_s"], _ = quiet(redis, a, label, "after the heartbeat window")
            id0 = redis.last_id()
            c0, q0 = redis.counts(), time.monotonic()
            ok = True
            end = time.monotonic() + 60  # the whole step's bound
            for _ in range(a.changes):
                side.loadgens[0].send("join")
                joined = side.loadgens[0].expect("lg: joined", max(1, end - time.monotonic()))
                side.loadgens[0].send("leave")
                left = side.loadgens[0].expect("lg: left", max(1, end - time.monotonic()))
                ok = ok and joined is not None and joined.get("ok") == "1" and left is not None
                if not ok:
                    break
            time.sleep(1.0)  # the stream's readers and the renewals that follow: a measured interval
            dt = time.monotonic() - q0
            c1 = redis.counts()
            # The change log's entries of the changes themselves (op u: a put, l: a leave, n:
            # the mesh's sets), apart from the background's (a: admission facts).
            ops = redis.log_ops(0, after=id0)
            if ok:
                changes = 2 * a.changes
                res["ops_per_change"] = max(0.0, (c1[0] - c0[0]) - res["idle_late_ops_s"] * dt) / changes
                res["log_per_change"] = sum(ops.get(o, 0) for o in ("u", "l", "n")) / changes
                print("  %s: per change (%d joins and %d leaves, less the quiet rate) %.1f store requests; "
                      "the change stream grew by %d entries (by op: %s): %.1f entries u, l or n per change"
                      % (label, a.changes, a.changes, res["ops_per_change"], c1[2] - c0[2],
                         ", ".join("%s %d" % kv for kv in sorted(ops.items())) or "none", res["log_per_change"]),
                      flush=True)
            else:
                print("  %s: the extra servant's join or leave did not complete" % label, flush=True)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        res["error"] = str(e)
        print("  %s: %s" % (label, e), flush=True)
    finally:
        # The managers' logs up to here: what they closed before the side is stopped (its
        # load generators' quitting closes every session).
        logs_before = {}
        for name in os.listdir(tmp):
            if name.endswith(".log"):
                try:
                    logs_before[name] = os.path.getsize(os.path.join(tmp, name))
                except OSError:
                    pass
        if guard:
            guard.stop()
            res["rss_peak"] = guard.peak
            print("  %s: the managers' largest VmRSS: %s MiB" % (label, " ".join("%.0f" % x for x in guard.peak)),
                  flush=True)
        if side:
            side.stop()
            for lg in side.loadgens:
                for line in lg.seen:
                    if not line.startswith("lg: "):
                        print("    loadgen: %s" % line)
        if redis:
            redis.child.stop()
        # Sessions the managers closed, by reason (a load generator's lost sessions).
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log"):
                reasons = {}
                with open(os.path.join(tmp, name)) as f:
                    for l in f.read(logs_before.get(name, 0)).splitlines():
                        if " closed: " in l and "servant " in l:
                            why = l.rstrip().split(" closed: ", 1)[1]
                            reasons[why] = reasons.get(why, 0) + 1
                if reasons:
                    print("    %s: servants' sessions it closed before the side was stopped: %s" % (name, ", ".join(
                        "%d %s" % (c, w) for w, c in sorted(reasons.items(), key=lambda kv: -kv[1])[:4])))
        # The managers log warnings and errors only; those about the store (it went down, a
        # snapshot read again) are shown when this side did not settle, counted otherwise.
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log") and "error" not in res:
                with open(os.path.join(tmp, name)) as f:
                    notes = [l.rstrip() for l in f if (": warn: " in l or ": error: " in l) and "store" in l]
                if notes:
                    print("    %s: %d warnings or errors about the store%s" % (
                        name, len(notes), ", the first:" if not res.get("converged", 1) else ""))
                    if not res.get("converged", 1):
                        for l in notes[:8]:
                            print("      " + l[:300])
        if "error" in res:
            for name in sorted(os.listdir(tmp)):
                if name.endswith(".log"):
                    with open(os.path.join(tmp, name)) as f:
                        tail = f.read()[-1500:]
                    if tail.strip():
                        print("    %s: ...%s" % (name, tail.strip()))
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def one_max_default():
    """The most servants one manager can hold here: as scripts/bench.sh's largest N, the hard
    file limit less 1,000 (its own files, unauthenticated connections), at most 19,000."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        hard = 1048576
    return min(hard - 1000, 19000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--loadgen", default=None, help="default: BINDIR/natmesh-loadgen")
    ap.add_argument("--sizes", default="50000")
    ap.add_argument("--managers", type=int, default=3)
    ap.add_argument("--one-max", type=int, default=None,
                    help="the one manager's N at most (default: as many as it can hold, the hard file "
                         "limit less 1,000, at most 19,000)")
    ap.add_argument("--views", type=int, default=1, choices=(0, 1),
                    help="1 (default): the managers' default --mesh-above, servants take views; "
                         "0: the full mesh on both sides (--mesh-above above N)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--quiet", type=float, default=3.0, help="the quiet interval measured (s)")
    ap.add_argument("--settle-quiet", type=int, default=500,
                    help="views: settled after this many ms with no list, delta or neighbours")
    ap.add_argument("--settle-timeout", type=float, default=60.0,
                    help="views: the bound on settling after the registration (s)")
    ap.add_argument("--max-rss", type=float, default=6144,
                    help="MiB: a manager past it stops the side (memory guard)")
    ap.add_argument("--min-available", type=float, default=2048,
                    help="MiB: the machine's MemAvailable under it stops the side (memory guard)")
    ap.add_argument("--changes", type=int, default=10, help="joins (and as many leaves) counted")
    ap.add_argument("--register-timeout", type=float, default=120.0)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args()
    # scripts/bench.sh's timeout sends SIGTERM: the sides' finally blocks stop their children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a.loadgen = a.loadgen or os.path.join(a.bindir, "natmesh-loadgen")
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        print("managers: redis-server and redis-cli are needed (scripts/setup.sh installs them)")
        return 1
    # Every child under the hard file limit: the soft one raised to it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    one_max = a.one_max or one_max_default()
    rows = []
    first_per_change = None
    for n in [int(x) for x in a.sizes.split(",") if x]:
        n1 = min(n, one_max)
        share = -(-n // a.managers)
        if share + 1000 > hard:
            print("managers: %d servants per manager do not fit under ulimit -Hn %d" % (share, hard))
            return 1
        print("== managers N=%d: one manager with %d%s, then %d sharing a redis-server (%d servants each, %s)"
              % (n, n1, " (as many as it can hold)" if n1 < n else "", a.managers, share,
                 "views: the default --mesh-above" if a.views else
                 "--mesh-above %d: full lists on both sides" % max(1000, 2 * n)), flush=True)
        one = run_side(a, n1, 1, False)
        sh = run_side(a, n, a.managers, True)

        def row(fig, v, unit, b):
            rows.append([fig, n, "%.6g" % v, unit, "%.6g" % b, "%.4f" % (v / b if b else 0)])
        if "registered" in one and one["registered"] < n1:
            row("managers_one_register_incomplete", one["registered"], "servants", n1)
        if "registered" in sh and sh["registered"] < n:
            row("managers_register_incomplete", sh["registered"], "servants", n)
        if sh.get("lost_later"):
            row("managers_lost_after_register", sh["lost_later"], "servants", n)
        if one.get("lost_later"):
            row("managers_one_lost_after_register", one["lost_later"], "servants", n1)
        if n1 < n:
            # The one manager holds fewer than N: times and CPU per 1,000 servants on both
            # sides (the baseline at N1), said in the figure's name and unit.
            row("managers_one_servants", n1, "servants", n)
            per, sfx, unit = 1000.0, "_per_1000", "s/1000"
        else:
            per, sfx, unit = None, "", "s"

        def scaled(res, key):  # per 1,000 servants registered
            return res[key] / (max(1, res["registered"]) / per) if per else res[key]
        # A side whose managers the memory guard stopped: no figures of it but what says so.
        failed = "memory" in sh or "memory" in one
        if failed:
            print("  N=%d: no comparison (%s)" % (n, "; ".join(x["memory"] for x in (one, sh) if "memory" in x)),
                  flush=True)
        if not failed and "register_s" in sh and "register_s" in one:
            row("managers_register_seconds" + sfx, scaled(sh, "register_s"), unit, scaled(one, "register_s"))
            if sh.get("converged") and one.get("converged"):
                row("managers_settle_seconds" + sfx, scaled(sh, "settle_s"), unit, scaled(one, "settle_s"))
            else:
                row("managers_settle_incomplete", 1 - sh.get("converged", 0), "bool", 1 - one.get("converged", 0))
            row("managers_fds_per_manager", max(sh["fds"][0]), "fds", hard)
        if not failed and "cpu_s" in sh and "cpu_s" in one:
            row("managers_register_cpu_seconds" + sfx, scaled(sh, "cpu_s"), unit, scaled(one, "cpu_s"))
            row("managers_store_cpu_seconds", sh["store_cpu_s"], "s", sh["cpu_s"])
            row("managers_list_bytes_per_servant", sh["list_bytes"] / n, "B", one["list_bytes"] / n1)
        if not failed and "hb_rate" in sh and "hb_rate" in one:
            row("managers_heartbeat_rate", sh["hb_rate"], "acks/s", one["hb_rate"])
        if not failed and "rss" in sh and "rss" in one:
            row("managers_rss_per_manager", max(sh["rss"]), "MiB", max(one["rss"]))
            row("managers_rss_kib_per_servant", max(sh["rss"]) * 1024 / share, "KiB", max(one["rss"]) * 1024 / n1)
            row("managers_rss_all", sh["rss_all"], "MiB", mem_total_mib())
        if not failed and "store_ops_s" in sh:
            row("managers_store_ops_per_sec", sh["store_ops_s"], "ops/s", sh.get("hb_rate", 0))
            row("managers_store_commands_per_sec", sh["store_cmds_s"], "cmds/s", n)
            row("managers_store_ops_idle_per_sec", sh["idle_ops_s"], "ops/s", a.managers)
            if "idle_late_ops_s" in sh:
                row("managers_store_ops_idle_late_per_sec", sh["idle_late_ops_s"], "ops/s", a.managers)
        if not failed and "ops_per_change" in sh:
            if first_per_change is None:
                first_per_change = sh["ops_per_change"]
            row("managers_store_ops_per_change", sh["ops_per_change"], "ops", first_per_change)
            row("managers_store_log_per_change", sh["log_per_change"], "entries", 1)
        if "rss_peak" in sh and "rss_peak" in one:
            row("managers_rss_peak_per_manager", max(sh["rss_peak"]), "MiB", max(one["rss_peak"]))
        if "memory" in sh:
            row("managers_memory_guard", 1, "bool", 0)
        if "error" in sh:
            row("managers_incomplete", 1, "bool", 0)
        if "error" in one:
            row("managers_one_incomplete", 1, "bool", 0)
    if a.csv:
        with open(a.csv, "a") as f:
            for r in rows:
                f.write(",".join(str(x) for x in r) + "\n")
    for r in rows:
        print("  %-34s N=%-6s %12s %-8s baseline %12s ratio %s" % tuple(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
