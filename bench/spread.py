#!/usr/bin/env python3
"""The spread of several scripts/bench.sh runs: reads their results files (figure,n,value,
unit,baseline,ratio; bench.sh's, or the rows chat.py appends) and prints a Markdown table with, per figure and N, the median value
and the range of values and of ratios over the runs (docs/performance.md's table).

  python3 bench/spread.py run1.csv run2.csv run3.csv"""
import csv
import statistics
import sys

COLUMNS = ("figure", "n", "value", "unit", "baseline", "ratio")


def fmt(v):
    if v == 0 or abs(v) >= 100:
        return "{:,.0f}".format(v)
    if abs(v) >= 1:
        return "%.2f" % v
    return "%.3g" % v


def main(paths):
    runs = []
    for p in paths:
        with open(p) as fh:  # with the header line or without (chat.py's rows alone)
            rows = [dict(zip(COLUMNS, r)) for r in csv.reader(fh) if r and r[0] != "figure"]
        runs.append({(r["figure"], int(r["n"])): r for r in rows})
    keys = sorted({k for run in runs for k in run}, key=lambda k: (k[0].startswith("chat"), k[0], k[1]))
    print("| figure | N | unit | value: median (min-max) | baseline: median | ratio: median (min-max) | runs |")
    print("|---|---|---|---|---|---|---|")
    for k in keys:
        rows = [run[k] for run in runs if k in run]
        vals = [float(r["value"]) for r in rows]
        bases = [float(r["baseline"]) for r in rows]
        ratios = [float(r["ratio"]) for r in rows]
        print("| %s | %s | %s | %s (%s-%s) | %s | %.2f (%.2f-%.2f) | %d |" % (
            k[0], "{:,}".format(k[1]), rows[0]["unit"], fmt(statistics.median(vals)), fmt(min(vals)),
            fmt(max(vals)), fmt(statistics.median(bases)), statistics.median(ratios), min(ratios),
            max(ratios), len(rows)))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
