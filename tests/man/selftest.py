#!/usr/bin/env python3
"""The man page checks can fail: check_render.py reports a page with an unknown macro and
one whose example is too wide; check_options.py reports an option missing from the page
and one missing from --help, each by name; the option extraction skips mentions in
sentences and dashes inside words.

usage: selftest.py SCDOC WORKDIR"""
import os
import subprocess
import sys

import manlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
failures = 0


def check(ok, what):
    global failures
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures += 1


def run(*args):
    p = subprocess.run([sys.executable] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def scdoc(scdoc_bin, src, out):
    with open(src, "rb") as i, open(out, "wb") as o:
        subprocess.run([scdoc_bin], stdin=i, stdout=o, check=True, timeout=30)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    scdoc_bin, work = argv
    if not manlib.have_man():
        print("SKIP: man (Debian's man-db) is not installed")
        return manlib.SKIP
    os.makedirs(work, exist_ok=True)
    wide, opts = os.path.join(work, "too-wide.1"), os.path.join(work, "options.1")
    scdoc(scdoc_bin, os.path.join(FIX, "too-wide.1.scd"), wide)
    scdoc(scdoc_bin, os.path.join(FIX, "options.1.scd"), opts)
    render = os.path.join(HERE, "check_render.py")

    macro = os.path.join(FIX, "broken-macro.1")
    rc, out = run(render, macro)
    check(rc == 1 and "macro 'XQ' not defined" in out,
          "check_render.py fails on an unknown macro and quotes groff's warning (rc %d)" % rc)
    rc, out = run(render, wide)
    check(rc == 1 and "columns wide" in out, "check_render.py fails on a too-wide example (rc %d)" % rc)
    rc, out = run(render, "--expect-problems", macro, wide)
    check(rc == 0, "check_render.py --expect-problems passes on both broken fixtures")
    rc, out = run(render, opts)
    check(rc == 0, "check_render.py passes a clean page (rc %d)" % rc)

    rc, out = run(os.path.join(HERE, "check_options.py"), "--help-file",
                  os.path.join(FIX, "options-help.txt"), opts)
    print(out.rstrip())
    check(rc == 1, "check_options.py fails when the page and --help differ (rc %d)" % rc)
    check("--beta is in the --help" in out, "it names --beta, missing from the page")
    check("--gamma is in the OPTIONS" in out, "it names --gamma, missing from --help")
    for name in ("--alpha", "-a", "--epsilon", "--delta", "-o", "-LAST", "-Tpng"):
        check("FAIL: %s " % name not in out, "it does not report %s" % name)

    cases = [
        ("usage: natmesh-portmap --port PORT [--upnp on|off]", ["--port", "--upnp"]),
        ("[-c|--config FILE] [-r|--port-range FIRST-LAST]", ["-c", "--config", "-r", "--port-range"]),
        ("-h, --help           this text", ["-h", "--help"]),
        ("grant this key the relay role (a relay invite, or --relay-key).", []),
        ("(Graphviz: natmesh-ctl status --format dot | dot -Tpng -o overlay.png)", []),
        ("(--invite INVITE | --invite @FILE | --manager-key FP)", ["--invite", "--invite", "--manager-key"]),
    ]
    for line, want in cases:
        got = manlib.options_in(line)
        check(got == want, "options_in(%r) = %r (want %r)" % (line, got, want))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
