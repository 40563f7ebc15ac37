#!/bin/sh
# A fuzzer as a ctest test: a fixed number of executions with a fixed seed, after its seed
# corpus, in a fresh working folder (WORKDIR/corpus gets what libFuzzer finds, a crash
# leaves WORKDIR/crash-*); the seed folders are only read.
# usage: run_fuzzer.sh FUZZER WORKDIR RUNS SEED_DIR...
set -eu
fuzzer=$1 work=$2 runs=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus"
exec "$fuzzer" -runs="$runs" -seed=1 -artifact_prefix="$work/" "$work/corpus" "$@"
