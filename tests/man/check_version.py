#!/usr/bin/env python3
"""PROGRAM --version prints "NAME VERSION" (NAME the program's file name, VERSION the
project's) alone on stdout and exits 0; the same line the man pages' packages carry.

usage: check_version.py PROGRAM VERSION"""
import os
import subprocess
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    program, version = argv
    want = "%s %s" % (os.path.basename(program), version)
    p = subprocess.run([program, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode != 0 or out != want + "\n":
        print("FAIL: %s --version: exit %d, printed %r (stderr %r); expected %r and exit 0"
              % (program, p.returncode, out, p.stderr.decode("utf-8", "replace")[:200], want))
        return 1
    print("ok: %s --version: %s" % (program, want))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
