#!/usr/bin/env python3
"""A program's man page and its --help name the same options, both ways.

The page's options are those named in the terms of its OPTIONS and COMMANDS sections
(a subcommand's own options are in its COMMANDS term); --help's are those its text names
as options (manlib.options_in: in the synopsis, in option lists, in brackets). Each
option missing on either side is reported.

usage: check_options.py PROGRAM PAGE
       check_options.py --help-file FILE PAGE   (the check's own test: --help from a file)"""
import subprocess
import sys

import manlib

TERM_INDENT = 7  # where man puts a definition's term; its text is indented further


def page_options(page):
    out, err, rc = manlib.render(page, 250)
    if rc != 0:
        raise SystemExit("FAIL: man -l %s exited %d: %s" % (page, rc, err.strip()))
    secs = manlib.sections(out)
    wanted = [name for name in secs if name.endswith("OPTIONS") or name.endswith("COMMANDS")]
    if not any(name.endswith("OPTIONS") for name in wanted):
        raise SystemExit("FAIL: %s has no OPTIONS section" % page)
    opts = set()
    for name in wanted:
        for line in secs[name]:
            indent = len(line) - len(line.lstrip(" "))
            if line.strip() and indent == TERM_INDENT:
                opts.update(manlib.options_in(line.strip()))
    return opts


def help_options(text):
    opts = set()
    for line in text.splitlines():
        opts.update(manlib.options_in(line.strip()))
    return opts


def main(argv):
    if len(argv) == 3 and argv[0] == "--help-file":
        with open(argv[1], encoding="utf-8") as f:
            help_text, program = f.read(), argv[1]
        page = argv[2]
    elif len(argv) == 2:
        program, page = argv
        p = subprocess.run([program, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=30)
        if p.returncode != 0:
            print("FAIL: %s --help exited %d" % (program, p.returncode))
            return 1
        help_text = p.stdout.decode("utf-8", "replace")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if not manlib.have_man():
        print("SKIP: man (Debian's man-db) is not installed")
        return manlib.SKIP
    in_page, in_help = page_options(page), help_options(help_text)
    if not in_help:
        print("FAIL: found no option in the --help of %s" % program)
        return 1
    only_help = sorted(in_help - in_page)
    only_page = sorted(in_page - in_help)
    for o in only_help:
        print("FAIL: %s is in the --help of %s but not in the OPTIONS (or COMMANDS) of %s" % (o, program, page))
    for o in only_page:
        print("FAIL: %s is in the OPTIONS (or COMMANDS) of %s but not in the --help of %s" % (o, page, program))
    if only_help or only_page:
        return 1
    print("ok: %s and %s both name these %d options: %s" % (page, program, len(in_page), " ".join(sorted(in_page))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
