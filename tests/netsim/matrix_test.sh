#!/usr/bin/env bash
# natmesh-netsim matrix on a 2x2 subset: public and apdm-apdf (symmetric NAT). Two public
# servants connect directly; a public one and one behind a symmetric NAT too (the NATed one
# dials out); two behind symmetric NATs can only be relayed (no punch gets through an
# address-and-port-dependent mapping). The grid is printed and written as Markdown and JSON,
# and the run folders of the cells are gone afterwards.
# usage: matrix_test.sh NETSIM BINDIR RUNS_DIR OUT_DIR
set -u
NETSIM=$1 BINDIR=$2 RUNS=$3 OUT=$4
. "$(dirname "$0")/lib.sh"
rm -rf "$OUT"
"$NETSIM" --dir "$RUNS" --bindir "$BINDIR" matrix --behaviours public,apdm-apdf --hold 5 --out "$OUT" > "$OUT.log" 2>&1
rc=$?
cat "$OUT.log"
[ $rc = 0 ] || fail "matrix exited $rc"
[ -f "$OUT/matrix.md" ] && [ -f "$OUT/matrix.json" ] || fail "no matrix.md / matrix.json in $OUT"
python3 - "$OUT/matrix.json" <<'PY' || fail "matrix.json does not hold the expected cells"
import json, sys
m = json.load(open(sys.argv[1]))
cells = {(c["alice"], c["bob"]): c for c in m["cells"]}
assert m["behaviours"] == ["public", "apdm-apdf"], m["behaviours"]
assert len(cells) == 3, cells
pp = cells[("public", "public")]
assert pp["outcome"] == "direct" and pp["first_direct_ms"] is not None, pp
ps = cells[("public", "apdm-apdf")]
assert ps["outcome"] == "direct", ps
ss = cells[("apdm-apdf", "apdm-apdf")]
assert ss["outcome"] == "relayed" and ss["first_direct_ms"] is None, ss
print("json ok:", m["summary"])
PY
grep -q '^| apdm-apdf | .* relayed |$' "$OUT/matrix.md" || fail "matrix.md lacks the relayed cell"
grep -q '66% end up direct' "$OUT/matrix.md" || fail "matrix.md lacks the share of direct pairs"
ls "$OUT"/cells/*.xml > /dev/null || fail "no generated cell files"
for x in "$OUT"/cells/*.xml; do "$NETSIM" check "$x" > /dev/null || fail "$x does not check"; done
for id in $(sed -n 's/.*run exit [0-9]*, .*\/\([0-9a-f]\{6\}\))$/\1/p' "$OUT.log"); do
  ns_of_run_left "$id" && fail "run $id left namespaces behind"
done
echo PASS
