#!/usr/bin/env python3
"""The agent's side of one ADD, system call by system call (lab/bench/README.md,
session 18, cniadd4 lane; run by `record.sh` after ledger.py).

For every ADD (plugin or API alone) the ledger pairs, the thread that read
the request is followed from that read to its answer's `writev`: each of its
recorded system calls (label = name#occurrence) with the time before it (the
agent's own user-space work, or waiting for a CPU when the thread was switched
out) and its duration (the kernel's work, or a wait inside the call). Prints
the median over ADDs in the order of the calls, and the totals: user-space
gaps while running, gaps while switched out, time inside calls.
"""
import sys
from collections import defaultdict

from ledger import find_agent_and_bench, parse, pct

NAMES = {0: "read", 1: "write", 3: "close", 16: "ioctl", 17: "pread64", 18: "pwrite64",
         20: "writev", 41: "socket", 42: "connect", 44: "sendto", 45: "recvfrom",
         48: "shutdown", 49: "bind", 51: "getsockname", 54: "setsockopt", 75: "fdatasync",
         77: "ftruncate", 138: "fstatfs", 202: "futex", 232: "epoll_wait", 233: "epoll_ctl",
         257: "openat", 281: "epoll_pwait", 288: "accept4", 299: "recvmmsg", 308: "setns",
         318: "getrandom"}


def main(path):
    ev = parse(path)
    # One ADD: an agent worker's recvfrom of > 200 bytes (the request)
    # followed, on the same thread, by a writev of > 300 bytes (its answer).
    agent, _ = find_agent_and_bench(ev)
    by_tid = defaultdict(list)
    for d in ev:
        if d["pid"] == agent:
            by_tid[d["tid"]].append(d)
    adds = []
    for tid, evs in by_tid.items():
        start = None
        for i, d in enumerate(evs):
            if d["nr"] == 45 and d["ret"] is not None and d["ret"] > 200 and d["comm"].startswith("tokio"):
                start = i
            elif d["nr"] == 20 and d["ret"] is not None and start is not None:
                if d["ret"] > 300:
                    adds.append(evs[start:i + 1])
                start = None
    gaps, durs, pos = defaultdict(list), defaultdict(list), defaultdict(list)
    tot_user, tot_out, tot_call, ncalls = [], [], [], []
    for seq in adds:
        seen = defaultdict(int)
        last_exit = seq[0]["time"]
        out_since = None
        gap_out = 0.0
        user = out = incall = 0.0
        enter_t = None
        k = 0
        for d in seq[1:]:
            if d["event"] == "sched:sched_switch":
                if d["tid"] == seq[0]["tid"] and "prev_pid=%d " % d["tid"] in d["trace"]:
                    out_since = d["time"]
                continue
            if d["event"] == "sched:sched_wakeup":
                continue
            if out_since is not None and d["tid"] == seq[0]["tid"]:
                # first event after being switched back in
                gap_out += d["time"] - out_since
                out_since = None
            if d["nr"] is None:
                continue
            if d["ret"] is None:
                enter_t = d["time"]
                g = enter_t - last_exit
                name = NAMES.get(d["nr"], str(d["nr"]))
                seen[name] += 1
                label = f"{name}#{seen[name]}"
                gaps[label].append((g - gap_out) * 1e6)
                pos[label].append(k)
                k += 1
                user += g - gap_out
                out += gap_out
                gap_out = 0.0
                cur = label
            elif enter_t is not None:
                durs[cur].append((d["time"] - enter_t) * 1e6)
                incall += d["time"] - enter_t
                last_exit = d["time"]
                enter_t = None
                gap_out = 0.0
        tot_user.append(user * 1e6)
        tot_out.append(out * 1e6)
        tot_call.append(incall * 1e6)
        ncalls.append(k)
    n = len(adds)
    print(f"agent handler of {n} ADDs (request read -> answer writev), the reading thread only")
    print(f"{'call':16} {'in ADDs':>7} {'user before p50':>16} {'call p50':>9} {'call p90':>9}")
    for label in sorted(gaps, key=lambda l: (pct(pos[l], .5), l)):
        if len(gaps[label]) < n / 2:
            continue
        print(f"{label:16} {len(gaps[label]):7} {pct(gaps[label], .5):16.1f} "
              f"{pct(durs[label], .5):9.1f} {pct(durs[label], .9):9.1f}")
    print(f"{'totals per ADD':16} calls p50 {pct(ncalls, .5)}; user-space gaps p50 {pct(tot_user, .5):.0f} µs; "
          f"switched out (call gaps) p50 {pct(tot_out, .5):.0f} µs; inside calls p50 {pct(tot_call, .5):.0f} µs")


if __name__ == "__main__":
    main(*sys.argv[1:])
