#!/bin/sh
# TORTIE_BIN wrapper: runs the real agent ($AGENT_BIN) under a measuring
# command, for `tortie-bench attach` (lab/bench/README.md, session 18,
# cniadd4 lane). MODE=stat: perf stat (task-clock, context switches, system
# calls, page faults, instructions) into $OUT.stat; MODE=record: perf record
# (user+kernel call graphs, dwarf) into $OUT.data. Other invocations (the
# bench's `tortie --version` etc.) run the agent binary directly. SIGTERM is
# forwarded to perf by PID so the agent shuts down as the bench expects.
set -u
case "${1:-}" in run) ;; *) exec "$AGENT_BIN" "$@" ;; esac
case "$MODE" in
stat)
    perf stat -x, -o "$OUT.stat" \
        -e task-clock,context-switches,raw_syscalls:sys_enter,page-faults,instructions:u,instructions:k \
        -- "$AGENT_BIN" "$@" &
    ;;
record)
    perf record -q -F "${FREQ:-4999}" --call-graph dwarf,16384 -o "$OUT.data" -- "$AGENT_BIN" "$@" &
    ;;
*) echo "MODE=stat|record" >&2; exit 2 ;;
esac
child=$!
trap 'kill -TERM $(pgrep -P $child) 2>/dev/null || kill -TERM $child' TERM INT
wait $child
trap - TERM INT
wait $child
