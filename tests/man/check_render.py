#!/usr/bin/env python3
"""A man page renders cleanly: `MANWIDTH=80 man --warnings -E UTF-8 -l PAGE` prints no
warning (groff's or man's), and no rendered line is wider than 80 columns (an example
that overflows a terminal).

usage: check_render.py PAGE...            exit 0 if every page is clean, else 1
       check_render.py --expect-problems PAGE...
                                           exit 0 if every page has a problem (the
                                           check's own test, on broken fixtures)"""
import sys

import manlib

WIDTH = 80


def problems(page):
    out, err, rc = manlib.render(page, WIDTH, warnings="")
    found = ["man: " + l for l in err.splitlines() if l.strip()]
    if rc != 0:
        found.append("man exited %d" % rc)
    if not out.strip():
        found.append("rendered to nothing")
    for n, line in enumerate(out.splitlines(), 1):
        if len(line) > WIDTH:
            found.append("line %d is %d columns wide (> %d): %s" % (n, len(line), WIDTH, line.strip()))
    return found


def main(argv):
    expect = argv[:1] == ["--expect-problems"]
    pages = argv[1:] if expect else argv
    if not pages:
        print(__doc__, file=sys.stderr)
        return 2
    if not manlib.have_man():
        print("SKIP: man (Debian's man-db) is not installed")
        return manlib.SKIP
    bad = 0
    for page in pages:
        found = problems(page)
        if expect:
            if found:
                print("ok: %s: the check finds: %s" % (page, "; ".join(found)))
            else:
                print("FAIL: %s is broken on purpose, but the check found nothing" % page)
                bad += 1
        elif found:
            for f in found:
                print("FAIL: %s: %s" % (page, f))
            bad += 1
        else:
            print("ok: %s renders at %d columns without warnings" % (page, WIDTH))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
