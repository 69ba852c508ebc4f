#!/usr/bin/env python3
"""One CNI ADD's ledger, step by step, from a system-wide perf record of
`tortie-bench attach` (lab/bench/README.md, session 18, cniadd4 lane;
recorded by `cni-ledger/record.sh`, which runs this).

Input: `perf script -F comm,pid,tid,cpu,time,event,trace` of raw_syscalls
(filtered ids), sched_process_exec/exit, sched_wakeup, sched_switch. The
bench runs one request at a time, so each client's connect is paired with the
agent's next successful accept4. Clients: every `tortie-cni` process (the
plugin rows) and the bench's own connects (the "agent API alone" row). ADD vs
DEL: the agent's answer (`writev`) is > 300 bytes for an ADD. Per step:
p50 / p90 in µs and n; counts per ADD (agent wake-ups, sleeps, the agent's
filtered system calls, agent threads involved).
"""
import bisect
import re
import sys
from collections import Counter, defaultdict

LINE = re.compile(
    r"^\s*(?P<comm>.+?)\s+(?P<pid>-?\d+)/(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+"
    r"(?P<time>\d+\.\d+):\s+(?P<event>\S+):\s*(?P<trace>.*)$")
ENTER = re.compile(r"NR (\d+) \(([0-9a-f]+)(?:, ([0-9a-f]+), ([0-9a-f]+))?")
EXIT = re.compile(r"NR (\d+) = (-?\d+)")
WAKE = re.compile(r"comm=(.+?) pid=(\d+) ")
NR_READ, NR_WRITE, NR_CLOSE, NR_WRITEV = 0, 1, 3, 20
NR_CONNECT, NR_SENDTO, NR_RECVFROM = 42, 44, 45
NR_WAIT4, NR_EXIT_GROUP, NR_ACCEPT4, NR_CLONE3 = 61, 231, 288, 435


# (step, from, to): the named instants of one ADD.
STEPS = [
    ("01 bench: posix_spawn (clone3) -> plugin exec'd", "spawn", "exec"),
    ("02 plugin: exec'd -> connect", "exec", "connect"),
    ("03 client: connect -> request written", "connect", "sent"),
    ("04 agent: connect -> accept4 returns", "connect", "accept"),
    ("05 agent: request written -> read by agent", "sent", "request"),
    ("06 agent: request read -> first netlink send", "request", "netlink"),
    ("07 agent: request read -> answer writev", "request", "writev"),
    ("08 answer writev -> client's read returns", "writev", "answer"),
    ("09 plugin: answer read -> exit", "answer", "exit"),
    ("10 bench: plugin exit -> wait4 returns", "exit", "reaped"),
    ("11 client: connect -> answer", "connect", "answer"),
    ("12 ALL: posix_spawn -> reaped", "spawn", "reaped"),
]


def parse(path):
    ev = []
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        d = m.groupdict()
        d["pid"], d["tid"], d["time"] = int(d["pid"]), int(d["tid"]), float(d["time"])
        d["nr"] = d["ret"] = d["arg0"] = None
        if d["event"] == "raw_syscalls:sys_enter":
            e = ENTER.match(d["trace"])
            d["nr"], d["arg0"] = int(e.group(1)), int(e.group(2), 16)
        elif d["event"] == "raw_syscalls:sys_exit":
            e = EXIT.match(d["trace"])
            d["nr"], d["ret"] = int(e.group(1)), int(e.group(2))
        elif d["event"] == "sched:sched_wakeup":
            w = WAKE.search(d["trace"])
            d["wake_comm"], d["wake_tid"] = w.group(1), int(w.group(2))
        ev.append(d)
    ev.sort(key=lambda d: d["time"])
    return ev


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def find_agent_and_bench(ev, plugin="tortie-cni"):
    """The agent: the process the plugins' connects wake; the bench: the
    process that reaps the plugins."""
    pid_of = {d["tid"]: d["pid"] for d in ev}
    agent_votes, bench_votes = Counter(), Counter()
    plugin_pids = {d["tid"] for d in ev if d["comm"] == plugin}
    last_connect = {}
    for d in ev:
        if d["comm"] == plugin and d["nr"] == NR_CONNECT and d["ret"] is None:
            last_connect[d["tid"]] = True
        elif d["event"] == "sched:sched_wakeup" and last_connect.pop(d["tid"], False):
            agent_votes[pid_of.get(d["wake_tid"])] += 1
        elif d["nr"] == NR_WAIT4 and d["ret"] in plugin_pids:
            bench_votes[d["pid"]] += 1
    return agent_votes.most_common(1)[0][0], bench_votes.most_common(1)[0][0]


def main(path, plugin="tortie-cni"):
    ev = parse(path)
    times = [d["time"] for d in ev]
    pid_of = {d["tid"]: d["pid"] for d in ev}
    agent, bench = find_agent_and_bench(ev, plugin)

    # Clients, in time order: (kind, tid, connect time).
    clients = []
    for d in ev:
        if d["nr"] == NR_CONNECT and d["ret"] is None:
            if d["comm"] == plugin:
                clients.append(("plugin", d["tid"], d["time"]))
            elif d["pid"] == bench:
                clients.append(("api", d["tid"], d["time"]))
    accepts = [d["time"] for d in ev
               if d["pid"] == agent and d["nr"] == NR_ACCEPT4 and d["ret"] is not None and d["ret"] >= 0]

    steps = {"plugin": defaultdict(list), "api": defaultdict(list)}
    counts = {"plugin": defaultdict(list), "api": defaultdict(list)}
    for k, (kind, ctid, t_conn) in enumerate(clients):
        t_next = clients[k + 1][2] if k + 1 < len(clients) else times[-1]
        a = bisect.bisect_left(accepts, t_conn)
        if a >= len(accepts) or accepts[a] > t_next:
            continue
        lo, hi = bisect.bisect_left(times, t_conn), bisect.bisect_right(times, t_next)
        s = {"connect": t_conn, "accept": accepts[a]}
        enter = {}
        conn_fd = None
        wakes = sleeps = calls = 0
        threads = set()
        for d in ev[lo:hi]:
            t = d["time"]
            if d["tid"] == ctid:
                if d["nr"] is not None and d["ret"] is None:
                    enter[d["nr"]] = d["arg0"]
                    if d["nr"] == NR_EXIT_GROUP:
                        s.setdefault("exit_group", t)
                elif d["nr"] in (NR_SENDTO, NR_WRITE) and "sent" not in s and d["ret"] > 0:
                    s["sent"] = t
                elif d["nr"] in (NR_READ, NR_RECVFROM) and "sent" in s and "answer" not in s and d["ret"] > 0:
                    s["answer"] = t
                elif d["event"] == "sched:sched_process_exit":
                    s["exit"] = t
                continue
            if d["pid"] == bench and d["nr"] == NR_WAIT4 and d["ret"] == ctid:
                s["reaped"] = t
                continue
            if d["pid"] != agent or "answer" in s:
                if d["event"] == "sched:sched_wakeup" and pid_of.get(d["wake_tid"]) == agent and "answer" not in s:
                    wakes += 1
                continue
            if d["event"] == "sched:sched_wakeup" and pid_of.get(d["wake_tid"]) == agent:
                wakes += 1
            elif d["event"] == "sched:sched_switch" and "prev_state=S" in d["trace"]:
                sleeps += 1
            elif d["ret"] is not None:
                calls += 1
                threads.add(d["tid"])
                if d["nr"] == NR_ACCEPT4 and d["ret"] >= 0 and conn_fd is None:
                    conn_fd = d["ret"]
                elif d["nr"] == NR_RECVFROM and d["ret"] > 0 and enter.get(("a", NR_RECVFROM)) == conn_fd and "request" not in s:
                    s["request"] = t
                elif d["nr"] == NR_WRITEV and "request" in s:
                    s["answer_len"] = d["ret"]
            elif d["nr"] is not None:
                enter[("a", d["nr"])] = d["arg0"]
                if d["nr"] == NR_SENDTO and "request" in s and d["arg0"] != conn_fd:
                    s.setdefault("netlink", t)
                elif d["nr"] == NR_WRITEV and d["arg0"] == conn_fd:
                    s["writev"] = t
        if s.get("answer_len", 0) <= 300:
            continue  # a DEL, VERSION or an unmatched request
        if kind == "plugin":
            # The bench's clone3 that started this plugin: its last one before the exec.
            for d in reversed(ev[max(0, lo - 4000):lo]):
                if d["comm"] == plugin and d["tid"] == ctid and d["event"] == "sched:sched_process_exec":
                    s["exec"] = d["time"]
                if d["pid"] == bench and d["nr"] == NR_CLONE3 and d["ret"] is None and "exec" in s:
                    s["spawn"] = d["time"]
                    break
        st = steps[kind]

        for name, a, b in STEPS:
            if a in s and b in s:
                st[name].append((s[b] - s[a]) * 1e6)
        c = counts[kind]
        c["agent wake-ups (connect..answer)"].append(wakes)
        c["agent sleeps (switch out in S)"].append(sleeps)
        c["agent filtered system calls"].append(calls)
        c["agent threads with a call"].append(len(threads))
    print(f"agent pid {agent}, bench pid {bench}")
    for kind, title in (("plugin", f"{plugin} ADD"), ("api", "agent API alone ADD (POST /v1/attach)")):
        st, c = steps[kind], counts[kind]
        n = len(c["agent wake-ups (connect..answer)"])
        print(f"\n{title}: n = {n}")
        print(f"{'step':50} {'p50 µs':>9} {'p90 µs':>9}")
        for name in sorted(st):
            print(f"{name:50} {pct(st[name], .5):9.0f} {pct(st[name], .9):9.0f}")
        for name, v in c.items():
            print(f"{name:50} {pct(v, .5):9} {pct(v, .9):9}")


if __name__ == "__main__":
    main(*sys.argv[1:])
