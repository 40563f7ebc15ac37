#!/usr/bin/env bash
# `cmake --install` of this build into a fresh prefix puts every program of the build in
# BINDIR, each answering --version with "<program> VERSION" (exit 0), the docs and the
# sample configs in DOCDIR (examples/), and, with netsim, its scenarios in SCENARIODIR.
# Every problem is reported, then the test fails if there was any.
# usage: install_test.sh CMAKE BUILD_DIR VERSION BINDIR DOCDIR SCENARIODIR|- PROGRAM...
#        (BINDIR, DOCDIR and SCENARIODIR relative to the prefix, as GNUInstallDirs gives them)
set -u
cmake=$1 build=$2 version=$3 bindir=$4 docdir=$5 scenariodir=$6
shift 6
prefix=$(mktemp -d /tmp/natmesh-install-test.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
failed=0
bad() { echo "FAIL: $*"; failed=1; }

"$cmake" --install "$build" --prefix "$prefix" >"$prefix/install.log" 2>&1 ||
  { cat "$prefix/install.log"; echo "FAIL: cmake --install exited non-zero"; exit 1; }
echo "-- installed into $prefix ($(grep -c 'Installing:' "$prefix/install.log") files)"

for prog in "$@"; do
  exe=$prefix/$bindir/$prog
  if [ ! -x "$exe" ]; then bad "$bindir/$prog is not installed"; continue; fi
  out=$("$exe" --version 2>&1 </dev/null)
  rc=$?
  if [ $rc -ne 0 ] || [ "$out" != "$prog $version" ]; then
    bad "$prog --version: exit $rc, printed \"$(echo "$out" | head -n 3)\", expected \"$prog $version\" and exit 0"
  else
    echo "ok: $bindir/$prog --version: $out"
  fi
done

for f in README.md protocol.md architecture.md operators.md \
         examples/config.sample.xml examples/manager.sample.xml; do
  if [ -s "$prefix/$docdir/$f" ]; then echo "ok: $docdir/$f"; else bad "$docdir/$f is not installed"; fi
done
if [ "$scenariodir" != - ]; then
  for f in example.xml overlay/mixed.xml; do
    if [ -s "$prefix/$scenariodir/$f" ]; then echo "ok: $scenariodir/$f"
    else bad "$scenariodir/$f is not installed"; fi
  done
fi

[ $failed = 0 ] && echo PASS
exit $failed
