# Helpers shared by the netsim test scripts (sourced). Every wait polls for an event with a
# deadline; nothing sleeps for a fixed time and hopes.

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "-- $*"; }

# wait_for CMD... : polls CMD every 50ms until it succeeds or $WAIT_S seconds (default 20)
# pass. Returns CMD's last status.
wait_for() {
  local deadline=$(( $(date +%s%N) / 1000000 + ${WAIT_S:-20} * 1000 ))
  while ! "$@"; do
    [ $(( $(date +%s%N) / 1000000 )) -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# The run id netsim printed on stderr ("run 1a2b3c: namespaces ...").
run_id_in() { sed -n 's/.*run \([0-9a-f]\{6\}\): namespaces.*/\1/p' "$1" | head -n1; }

ns_of_run_left() { ip netns list | grep -q "^nms-$1-"; }
no_ns_of_run() { ! ns_of_run_left "$1"; }

# Prints the pids recorded in run $2's state (base $1) that still run (a zombie has ended:
# it only waits for its new parent to collect its status).
live_pids_of_run() {
  local base=$1 id=$2 kind pid start rest
  while read -r kind pid start; do
    [ "$kind" = pid ] || continue
    rest=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    # Fields from 3 on: state is $1, start time (field 22) is $20.
    set -- $rest
    [ "${20}" = "$start" ] && [ "$1" != Z ] && echo "$pid"
  done < "$base/$id/state"
  # Any process whose command line names the run folder (daemon configs live there).
  # (pgrep leaves itself out, where a grep over /proc/*/cmdline would find itself.)
  pgrep -f -- "$base/$id/" || true
}
no_live_pids() { [ -z "$(live_pids_of_run "$1" "$2")" ]; }

# Fails unless run $2 (in base $1) left no namespace and no live process it recorded, and its
# state file is marked clean.
assert_run_gone() {
  local base=$1 id=$2 pid
  [ -f "$base/$id/state" ] || fail "run $id has no state file"
  if ns_of_run_left "$id"; then fail "namespaces of run $id left: $(ip netns list | grep "nms-$id-" | tr '\n' ' ')"; fi
  if ! WAIT_S=5 wait_for no_live_pids "$base" "$id"; then
    for pid in $(live_pids_of_run "$base" "$id"); do
      echo "still alive: $pid $(tr '\0' ' ' < "/proc/$pid/cmdline")" >&2
    done
    fail "processes of run $id are still alive"
  fi
  grep -qx clean "$base/$id/state" || fail "state of run $id is not marked clean"
  note "run $id: no namespace, no process left"
}

# What the host's own namespace looks like, to prove netsim never changed it.
root_snapshot() {
  { ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
    ip -o -4 addr show | awk '{print $2, $4}' | sort
    ip -4 route show table all | sort
    ip rule show | sort; } 2>/dev/null
}
