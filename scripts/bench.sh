#!/usr/bin/env bash
# natmesh's benchmark suite (issue 13; docs/performance.md, "The scale suite"): builds with
# optimisation into its own build directory, runs natmesh-loadgen at N = 1,000, 10,000 and
# the largest N the file limit allows against a real natmesh-manager (each figure a ratio
# against a baseline measured in the same invocation), then the chat benchmark with 200 real
# servants, prints a table and writes bench/results.csv (figure,n,value,unit,baseline,ratio).
#
#   ./scripts/bench.sh [--sizes 1000,10000,MAX] [--seconds S] [--chat N|0] [--no-build]
#                      [--bindir DIR] [--managers | --no-managers | --managers-only]
#                      [--managers-sizes 50000]
#
# The managers part (bench/managers.py, issue 14: three managers sharing a redis-server
# and 50,000 servants, a bounded mesh with views, against one manager with as many as it
# can hold, 19,000 here, measured in the same part) runs by default (--managers says so;
# about 2.5 minutes); --no-managers leaves it out; --managers-only runs it alone and
# replaces only its rows (managers_*) in the results file; --managers-sizes 900,2700 the
# older sizes (one manager with the same N).
# --bindir DIR measures the programs of another build (natmesh-manager, natmesh-servant,
# natmesh-ctl from DIR; natmesh-loadgen still from this tree), e.g. a branch's build.
# Environment: BENCH_BUILD (default build-bench), BENCH_CSV (default bench/results.csv).
# Every step is bounded in time: a figure that cannot complete within its bound is recorded
# as such (register_incomplete, join_incomplete, ...), never waited for.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-$root/build-bench}
csv=${BENCH_CSV:-$root/bench/results.csv}
sizes=""
seconds=2
chat=200
do_build=1
progs=""
managers=1
managers_sizes=50000
only_managers=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --chat) chat=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --bindir) progs=$(cd "$2" && pwd); shift 2 ;;
    --managers) managers=1; shift ;;
    --no-managers) managers=0; shift ;;
    --managers-sizes) managers_sizes=$2; shift 2 ;;
    --managers-only) managers=1; only_managers=1; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

start=$(date +%s)
if [ "$do_build" = 1 ]; then
  echo "== build (RelWithDebInfo: -O2) into $build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNATMESH_BUILD_TESTS=OFF \
        -DNATMESH_WITH_NETSIM=OFF -DNATMESH_WITH_BENCH=ON -DNATMESH_WITH_CTL=ON >/dev/null
  # The compiler's output goes to a log (the tree's own warnings are not this script's).
  nice -n 19 cmake --build "$build" -j "$(nproc)" \
        --target natmesh-loadgen natmesh-manager natmesh-servant natmesh-ctl \
        >"$build/bench-build.log" 2>&1 || { tail -30 "$build/bench-build.log"; exit 1; }
fi
bin=$build/bin
progs=${progs:-$bin}

# The largest N: one descriptor per session in the load generator and in the manager, each
# under the hard limit (the soft one is raised to it), less a reserve for the manager's own
# files, natmesh-ctl sessions and connections not yet authenticated; at most 19,000.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
max=$(( hard - 1000 ))
[ "$max" -gt 19000 ] && max=19000
[ -n "$sizes" ] || sizes="1000,10000,$max"
ulimit -Sn "$hard"

echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)," \
     "Linux $(uname -r), ulimit -Hn $hard, load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$(dirname "$csv")"
raw=$(mktemp /tmp/natmesh-bench.XXXXXX.csv)
trap 'rm -f "$raw"' EXIT

[ "$only_managers" = 1 ] && sizes="" && chat=0
for n in ${sizes//,/ }; do
  # Registration bounds: the whole run must stay under 10 minutes on 2 cores.
  if [ "$n" -le 2000 ]; then bound=60; elif [ "$n" -le 10000 ]; then bound=60; else bound=75; fi
  # Past the manager's --mesh-above (1,000 by default) the overlay is a bounded mesh and
  # natmesh-servant takes a view (hello views="1"): so do the simulated servants. At or
  # under it they hold the whole list, and a change is timed until it reached all N.
  if [ "$n" -gt 1000 ]; then views=1; else views=0; fi
  echo "== natmesh-loadgen N=$n (registration bound ${bound}s, views $views)"
  timeout --signal=TERM --kill-after=10 $(( bound + 240 )) \
    "$bin/natmesh-loadgen" --manager "$progs/natmesh-manager" --ctl "$progs/natmesh-ctl" \
      --n "$n" --seconds "$seconds" --register-timeout "$bound" --views "$views" --csv "$raw" \
    || echo "   (natmesh-loadgen N=$n exited $?: see above)"
done

if [ "$chat" -gt 0 ]; then
  echo "== chat: $chat real servants"
  timeout --signal=TERM --kill-after=10 300 \
    python3 "$root/bench/chat.py" --bindir "$progs" --n "$chat" --csv "$raw" \
      >"$raw.chat.log" 2>&1 || echo "   (chat.py failed: its summary follows)"
  # The harness's log is long: its notes, the figures and the verdict are shown.
  grep -E '^(# \[|chat|  chat|# PASS|# FAIL|not ok)' "$raw.chat.log" | grep -v ' started ' || true
  rm -f "$raw.chat.log"
fi

if [ "$managers" = 1 ]; then
  echo "== managers: 3 sharing a redis-server against one, N = $managers_sizes"
  # Its own bounds: 120 s per registration, 60 s per other step; the whole part under 6.5
  # minutes (it takes about 2.5).
  timeout --signal=TERM --kill-after=20 390 \
    python3 "$root/bench/managers.py" --bindir "$progs" --loadgen "$bin/natmesh-loadgen" \
      --sizes "$managers_sizes" --csv "$raw" \
    || echo "   (managers.py exited $?: see above)"
fi

# Growth figures across N (baseline: the smallest N of this invocation), then the table.
python3 - "$raw" "$csv" "$only_managers" <<'EOF'
import csv, os, sys
raw, out, only_managers = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rows = [r for r in csv.reader(open(raw)) if r]
if only_managers and os.path.exists(out):
    # The scale suite's rows already there stay; only the managers' are replaced.
    rows += [r for r in list(csv.reader(open(out)))[1:] if r and not r[0].startswith("managers_")]
by = {}
for f, n, v, u, b, r in rows:
    by.setdefault(f, {})[int(n)] = (float(v), u)
ns = sorted({int(r[1]) for r in rows if r[0] == "register_seconds"})
extra = []
if ns:
    n0 = ns[0]
    def registered(n):
        inc = by.get("register_incomplete", {}).get(n)
        return inc[0] if inc else n
    for n in ns[1:]:
        for f in ("register_seconds", "register_cpu_seconds"):
            if n in by.get(f, {}) and n0 in by.get(f, {}) and by[f][n0][0] > 0:
                g = by[f][n][0] / by[f][n0][0]
                lin = registered(n) / registered(n0)
                extra.append([f.replace("_seconds", "_growth"), n, "%.4g" % g, "x", "%.4g" % lin,
                              "%.4f" % (g / lin)])
    # Bytes per servant per change: constant in N is the goal; baseline = the smallest N.
    for f in ("join_bytes_per_servant", "leave_bytes_per_servant"):
        d = by.get(f, {})
        if d:
            b0 = d[min(d)][0]
            for i, r in enumerate(rows):
                if r[0] == f and b0 > 0:
                    rows[i] = [f, r[1], r[2], r[3], "%.6g" % b0, "%.4f" % (float(r[2]) / b0)]
rows += extra
rows.sort(key=lambda r: (r[0].startswith("managers"), r[0].startswith("chat"), r[0], int(r[1])))
with open(out, "w", newline="") as fh:
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(["figure", "n", "value", "unit", "baseline", "ratio"])
    w.writerows(rows)
print("\n%-34s %7s %14s %-8s %14s %8s" % ("figure", "n", "value", "unit", "baseline", "ratio"))
for f, n, v, u, b, r in rows:
    print("%-34s %7s %14.6g %-8s %14.6g %8s" % (f, n, float(v), u, float(b), r))
print("\nwrote %s (%d rows)" % (out, len(rows)))
EOF
echo "== bench.sh took $(( $(date +%s) - start )) s"
