#!/usr/bin/env bash
# One command for every test: install what is missing, build with clang, AddressSanitizer,
# UndefinedBehaviorSanitizer and the libFuzzer targets, and run the whole suite (unit,
# integration, install, fuzz, netsim) with ctest.
# The netsim scenarios create network namespaces and need root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
build=$root/build-test
# clang for -fsanitize=fuzzer; a build folder configured with another compiler is made anew
# (CMake cannot switch compilers in place).
if [ -f "$build/CMakeCache.txt" ] && ! grep -q '^CMAKE_C_COMPILER:[A-Z]*=.*clang' "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
BUILD_DIR=$build "$root/scripts/build.sh" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DNATMESH_SANITIZE=ON -DNATMESH_FUZZ=ON
cd "$build"
# detect_leaks stays on; a peer must never be able to make a natmesh program abort.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
ctest --output-on-failure --timeout 300 "$@" 2>&1 | tee ctest-output.txt || status=$?
# Figures the scenarios measure (e.g. time to the first relayed line, in heartbeat
# intervals): ctest hides the output of passing tests, so show them here.
log=Testing/Temporary/LastTest.log
if [ -f "$log" ] && grep -q '^measure ' "$log"; then
  echo "Measured figures:"
  grep '^measure ' "$log" | sed 's/^/  /'
  # ctest's own summary stays the last line, as readers of CI logs expect.
  grep -E '^[0-9]+% tests passed' ctest-output.txt | tail -n 1
fi
exit $status
