#!/bin/sh
# The CNI ADD ledger (lab/bench/README.md, session 18, cniadd4 lane): runs
# `tortie-bench attach --size N` under a system-wide `perf record` of the
# system calls an ADD makes (filtered by number), process exec/exit and the
# scheduler's wake-ups and switches, then prints the per-step ledger
# (ledger.py) and the agent's handler, system call by system call (steps.py).
#
#   BENCH=/path/tortie-bench TORTIE_BIN=... TORTIE_CNI_NOLIBC_BIN=... \
#       lab/bench/cni-ledger/record.sh OUTDIR [SIZE]
#
# perf's tracepoints cost ≈ 1–3 µs per recorded event; use the figures for
# order, counts and the larger steps, and the bench's own rows (no perf) for
# latency. Leaves OUTDIR/perf.data, OUTDIR/script.txt, OUTDIR/ledger.txt.
set -eu
out=$1
size=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
# read write close pread64 pwrite64 ioctl writev socket connect sendto
# recvfrom shutdown bind getsockname setsockopt clone wait4 fdatasync
# ftruncate fstatfs futex epoll_wait epoll_ctl exit_group openat epoll_pwait
# accept4 recvmmsg setns getrandom clone3 execve
ids="0 1 3 17 18 16 20 41 42 44 45 48 49 51 54 56 61 75 77 138 202 232 233 231 257 281 288 299 308 318 435 59"
filter=$(for i in $ids; do printf 'id==%s||' "$i"; done | sed 's/||$//')
perf record -q -a -o "$out/perf.data" \
    -e raw_syscalls:sys_enter --filter "$filter" \
    -e raw_syscalls:sys_exit --filter "$filter" \
    -e sched:sched_process_exec -e sched:sched_process_exit \
    -e sched:sched_wakeup -e sched:sched_switch \
    -- "${BENCH:-tortie-bench}" attach --size "$size" > "$out/bench.md" 2>&1
perf script -i "$out/perf.data" -F comm,pid,tid,cpu,time,event,trace > "$out/script.txt" 2>/dev/null
{
    python3 "$here/ledger.py" "$out/script.txt"
    echo
    python3 "$here/steps.py" "$out/script.txt"
} > "$out/ledger.txt"
cat "$out/ledger.txt"
