# Sourced by /init inside the test guest (busybox ash). See docs/vm.md.
#
# The IP-in-IP datapath with the real agent: every node runs `tortie run` (/usr/bin/tortie, the
# stripped build under test) with a TOML config this script writes, the nodes peer over iBGP,
# containers are attached with `tortie attach`, and the checks look only at what a user sees:
# the kernel's routes and devices, ping, and the agent's own CLI.
#
# Topology (all inside this guest; private addresses only; the guest has no NIC):
#
#   cA 10.244.1.10 ─ nodeA 192.168.10.2/24 ─┐                     (every underlay link: MTU 1400)
#                                            br0 192.168.10.1/24 ┐
#   cC 10.244.3.10 ─ nodeC 192.168.10.3/24 ─┘                    router (forwards; no routes
#   cB 10.244.2.10 ─ nodeB 192.168.20.2/24 ───── rB 192.168.20.1/24┘  to any 10.244/16 block)
#
# Node blocks: A 10.244.1.0/24, B 10.244.2.0/24, C 10.244.3.0/24; full iBGP mesh, AS 64512.
# A and C share a subnet; B is behind the router.
#
# Phases (the agents are restarted with a new dataplane.encapsulation between them):
#   1. underlay: node to node pings through the router.
#   2. ipip-cross-subnet: containers attached (MTU underlay - 20 = 1380); the agents' routes
#      are `<B block> via 192.168.20.2 dev tunl0 onlink` but `<C block> via 192.168.10.3 dev
#      eth0`; every container pings every other one; tunl0 counters prove which pings took
#      the tunnel; a full-size don't-fragment ping crosses it.
#   3. ipip: the agents restart (containers stay attached): now A<->C goes through tunl0 too.
#   4. none (negative control): the agents restart again; no route may use tunl0 any more,
#      and tunl0 gives its address back
#      (the plain route to B's block is refused by the kernel: the tunnel route it replaces
#      must still go), A learned B's block but has it not installed, A<->C pings (plain),
#      A<->B pings must NOT pass (the router has no pod routes).
#   5. the agents stop on SIGTERM with exit 0.

IP=/usr/bin/ip
PING=/usr/bin/ping
T=/usr/bin/tortie
RUN=/run/tortie-vm
PROTO=149
NODES="A B C"
# Not the kernel's default 1500, so that tunl0's MTU (which the ipip module creates at 1480)
# and the containers' show the agent's rule: underlay - 20 with IP-in-IP.
UNDERLAY_MTU=1400
TUNNEL_MTU=$((UNDERLAY_MTU - 20))
export RUST_LOG=info
: >/tmp/failures

now() { cut -d' ' -f1 /proc/uptime; }
phase() { echo "== $* (t=$(now) s)"; }
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$*" >>/tmp/failures; }
# must DESC CMD...: run CMD, record a failure if it fails.
must() {
  d=$1; shift
  if "$@"; then ok "$d"; else fail "$d"; fi
}
# x CMD...: set-up step; a failure here is recorded and aborts the scenario.
x() {
  if ! "$@"; then
    fail "setup step failed: $*"
    dump_logs
    exit 1
  fi
}
in_ns() { ns=$1; shift; "$IP" netns exec "$ns" "$@"; }
ping_from() { # ping_from NS DST [extra ping args]: 2 echoes, any reply within 2 s counts
  ns=$1; dst=$2; shift 2
  in_ns "$ns" "$PING" -n -q -c 2 -i 0.2 -W 2 "$@" "$dst" >/tmp/ping.out 2>&1
  r=$?
  sed 's/^/    /' /tmp/ping.out | grep -E 'packets|bytes from|ping:'
  return $r
}
no_ping_from() { # no_ping_from NS DST: succeeds only if ping ran and 3 echoes got no reply
  in_ns "$1" "$PING" -n -q -c 3 -i 0.2 -w 1 "$2" >/tmp/ping.out 2>&1
  r=$?
  sed 's/^/    /' /tmp/ping.out | grep -E 'packets|bytes from|ping:'
  # iputils ping exits 1 when no reply came and 2 on any other error (bad argument, no route
  # to even try): only "sent, nothing came back" counts as a failed crossing.
  [ "$r" -eq 1 ] && grep -q ' 0 received' /tmp/ping.out
}
tx_packets() { in_ns "node$1" cat /sys/class/net/tunl0/statistics/tx_packets; }
rx_packets() { in_ns "node$1" cat /sys/class/net/tunl0/statistics/rx_packets; }

# --- node data
node_addr() { case $1 in A) echo 192.168.10.2/24 ;; B) echo 192.168.20.2/24 ;; C) echo 192.168.10.3/24 ;; esac; }
node_ip() { node_addr "$1" | cut -d/ -f1; }
node_gw() { case $1 in B) echo 192.168.20.1 ;; *) echo 192.168.10.1 ;; esac; }
node_block() { case $1 in A) echo 10.244.1.0/24 ;; B) echo 10.244.2.0/24 ;; C) echo 10.244.3.0/24 ;; esac; }
ctr_ip() { case $1 in A) echo 10.244.1.10 ;; B) echo 10.244.2.10 ;; C) echo 10.244.3.10 ;; esac; }
sock() { echo "$RUN/node$1/tortie.sock"; }
# tortie_cli N ARGS...: the tortie CLI against node N's agent (a plain API client: no netns needed).
tortie_cli() { n=$1; shift; "$T" --socket "$(sock "$n")" "$@"; }

dump_logs() {
  for n in $NODES; do
    [ -f "$RUN/node$n/$ENCAP.log" ] || continue
    echo "--- node$n: tortie log ($ENCAP, last 20 lines), routes"
    tail -n 20 "$RUN/node$n/$ENCAP.log"
    in_ns "node$n" "$IP" route show proto "$PROTO" | sed "s/^/    node$n: /"
  done
}

# write_config N ENCAP: node N's tortie.toml (every other node is an iBGP peer).
write_config() {
  n=$1; d=$RUN/node$n
  mkdir -p "$d"
  {
    printf '[node]\nname = "node%s"\naddress = "%s"\nasn = 64512\npod_cidr = "%s"\n\n' \
      "$n" "$(node_addr "$n")" "$(node_block "$n")"
    printf '[bgp]\nconnect_retry = 1\n\n'
    for o in $NODES; do
      [ "$o" = "$n" ] && continue
      printf '[[peer]]\nname = "node%s"\naddress = "%s"\nasn = 64512\n\n' "$o" "$(node_ip "$o")"
    done
    printf '[dataplane]\nencapsulation = "%s"\n\n' "$2"
    printf '[api]\nsocket = "%s"\n\n[metrics]\nlisten = ""\n\n[state]\ndir = "%s/state"\n' \
      "$(sock "$n")" "$d"
  } >"$d/tortie.toml"
}

# start_agents ENCAP: write every node's config and start `tortie run` inside the node's
# namespace, logging to $RUN/nodeN/ENCAP.log. The first config is also run through
# `tortie check` (each CLI start costs ~0.5 s under TCG: once is enough).
start_agents() {
  ENCAP=$1
  for n in $NODES; do
    write_config "$n" "$ENCAP"
    if [ ! -e "$RUN/checked" ]; then
      : >"$RUN/checked"
      if "$T" check --config "$RUN/node$n/tortie.toml" >/tmp/check.out 2>&1; then
        ok "tortie check accepts node$n's config"
      else
        cat /tmp/check.out
        fail "tortie check of node$n's config"
        exit 1
      fi
    fi
    # A simple command, not a function: ash forks it directly, so $! is ip's PID, which ip
    # netns exec hands to tortie by exec.
    "$IP" netns exec "node$n" "$T" run --config "$RUN/node$n/tortie.toml" >"$RUN/node$n/$ENCAP.log" 2>&1 &
    echo $! >"$RUN/node$n/pid"
  done
}

# stop_agents: SIGTERM each agent (by the PID start_agents recorded) and wait for its exit.
stop_agents() {
  for n in $NODES; do
    pid=$(cat "$RUN/node$n/pid")
    kill -TERM "$pid"
    wait "$pid"
    rc=$?
    [ "$rc" -eq 0 ] && ok "node$n: tortie (pid $pid) exited 0 on SIGTERM" ||
      fail "node$n: tortie (pid $pid) exited $rc on SIGTERM"
  done
}

# established N: node N's `tortie status -o json` says converged and lists its two peers, both
# Established (pretty JSON: only peer objects carry a "state" key).
established() {
  tortie_cli "$1" status -o json >"/tmp/status.$1" 2>&1 || return 1
  grep -q '"converged": true' "/tmp/status.$1" &&
    [ "$(grep -c '"state": "' "/tmp/status.$1")" -eq 2 ] &&
    [ "$(grep -c '"state": "Established"' "/tmp/status.$1")" -eq 2 ]
}
# wait_for SECS CMD...: poll CMD every 0.2 s until it succeeds or SECS pass.
wait_for() {
  limit=$(awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.1f", t + s }'); shift
  while ! "$@"; do
    if awk -v t="$(now)" -v l="$limit" 'BEGIN { exit !(t > l) }'; then return 1; fi
    sleep 0.2
  done
}
# converge: every agent has converged (End-of-RIB from both peers). Its log line is polled
# first, because every CLI start costs ~0.5 s under TCG; `tortie status -o json` then has to
# confirm it (converged, both peers Established).
converge() {
  t=$(now)
  for n in $NODES; do
    log=$RUN/node$n/$ENCAP.log
    if ! wait_for 30 grep -q 'BGP converged' "$log" || ! established "$n"; then
      fail "node$n: not converged with both peers Established within 30 s ($ENCAP)"
      grep -E '"(address|state|info|converged)":' "/tmp/status.$n" | sed "s/^/    node$n: /"
      dump_logs
      exit 1
    fi
  done
  ok "$ENCAP: every agent converged, both peers Established ($(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s after the start)"
}
# kroute N BLOCK: node N's kernel route to BLOCK of protocol $PROTO (one line, or nothing).
kroute() { in_ns "node$1" "$IP" -o route show "$2" proto "$PROTO"; }
# has_kroute N BLOCK: that route exists.
has_kroute() { [ -n "$(kroute "$1" "$2")" ]; }

attach_all() {
  for n in $NODES; do
    if tortie_cli "$n" attach --netns "/run/netns/c$n" --id "c$n" --ip "$(ctr_ip "$n")" >/tmp/attach.out 2>&1; then
      echo "    node$n: attached c$n: $(cat /tmp/attach.out)"
    else
      cat /tmp/attach.out
      fail "node$n: tortie attach c$n"
      dump_logs
      exit 1
    fi
  done
}
ctr_mtu() { in_ns "c$1" cat /sys/class/net/eth0/mtu; }
show_routes() { for n in $NODES; do in_ns "node$n" "$IP" route show proto "$PROTO" | sed "s/^/    node$n: /"; done; }

# ---------------------------------------------------------------- topology
phase "topology"
mkdir -p "$RUN"
# `ip -batch` per namespace: each ip start costs ~0.1 s under TCG.
batch() { # batch NS < commands
  if ! "$IP" -n "$1" -batch -; then
    fail "setup step failed: ip -n $1 -batch"
    exit 1
  fi
}
printf 'netns add %s\n' router nodeA nodeB nodeC cA cB cC >/tmp/netns.batch
x "$IP" -batch /tmp/netns.batch
for ns in cA cB cC; do
  batch "$ns" <<CMDS
link set lo up
CMDS
done
batch router <<CMDS
link set lo up
link add br0 type bridge
addr add 192.168.10.1/24 dev br0
link set br0 up
link add rA mtu $UNDERLAY_MTU type veth peer name eth0 mtu $UNDERLAY_MTU netns nodeA
link add rB mtu $UNDERLAY_MTU type veth peer name eth0 mtu $UNDERLAY_MTU netns nodeB
link add rC mtu $UNDERLAY_MTU type veth peer name eth0 mtu $UNDERLAY_MTU netns nodeC
link set rA master br0
link set rC master br0
addr add 192.168.20.1/24 dev rB
link set rA up
link set rB up
link set rC up
CMDS
for n in $NODES; do
  batch "node$n" <<CMDS
link set lo up
addr add $(node_addr "$n") dev eth0
link set eth0 up
route add default via $(node_gw "$n")
CMDS
done
x in_ns router sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward'

phase "underlay"
must "underlay nodeA -> nodeB through the router" ping_from nodeA 192.168.20.2
must "underlay nodeC -> nodeB through the router" ping_from nodeC 192.168.20.2
must "underlay nodeA -> nodeC on the shared subnet" ping_from nodeA 192.168.10.3

# ---------------------------------------------------------------- ipip-cross-subnet
phase "ipip-cross-subnet"
start_agents ipip-cross-subnet
converge
attach_all
for n in $NODES; do
  for o in $NODES; do
    [ "$o" = "$n" ] && continue
    wait_for 5 has_kroute "$n" "$(node_block "$o")" || true
  done
done
show_routes
rB=$(kroute A "$(node_block B)")
rC=$(kroute A "$(node_block C)")
case "$rB" in
  *"via 192.168.20.2 dev tunl0"*onlink*) ok "nodeA: route to B's block goes through tunl0 onlink ($rB)" ;;
  *) fail "nodeA: route to B's block is '$rB', want via 192.168.20.2 dev tunl0 onlink" ;;
esac
case "$rC" in
  *tunl0*) fail "nodeA: route to C's block uses the tunnel inside the subnet: '$rC'" ;;
  *"via 192.168.10.3 dev eth0"*) ok "nodeA: route to C's block is plain inside the subnet ($rC)" ;;
  *) fail "nodeA: route to C's block is '$rC', want via 192.168.10.3 dev eth0" ;;
esac
rA=$(kroute B "$(node_block A)")
case "$rA" in
  *"via 192.168.10.2 dev tunl0"*onlink*) ok "nodeB: route to A's block goes through tunl0 onlink ($rA)" ;;
  *) fail "nodeB: route to A's block is '$rA', want via 192.168.10.2 dev tunl0 onlink" ;;
esac
tunl=$(in_ns nodeA "$IP" -o -4 addr show dev tunl0)
case "$tunl" in
  *"inet 10.244.1."*) ok "nodeA: tunl0 has an address from the node's block ($(echo "$tunl" | awk '{ print $4 }'))" ;;
  *) fail "nodeA: tunl0 address: '$tunl', want one from 10.244.1.0/24" ;;
esac
mtu=$(in_ns nodeA cat /sys/class/net/tunl0/mtu)
[ "$mtu" = "$TUNNEL_MTU" ] && ok "nodeA: tunl0 mtu $mtu (underlay $UNDERLAY_MTU - 20)" || fail "nodeA: tunl0 mtu $mtu, want $TUNNEL_MTU"
m=$(ctr_mtu A)
[ "$m" = "$TUNNEL_MTU" ] && ok "ipip-cross-subnet: cA's eth0 mtu $m" || fail "ipip-cross-subnet: cA's eth0 mtu $m, want $TUNNEL_MTU"

txa=$(tx_packets A); rxb=$(rx_packets B)
must "ipip-cross-subnet: cA -> cB across the tunnel" ping_from cA "$(ctr_ip B)"
txa2=$(tx_packets A); rxb2=$(rx_packets B)
[ "$txa2" -gt "$txa" ] && [ "$rxb2" -gt "$rxb" ] &&
  ok "tunl0 counters moved: nodeA tx $txa -> $txa2, nodeB rx $rxb -> $rxb2" ||
  fail "tunl0 counters did not move: nodeA tx $txa -> $txa2, nodeB rx $rxb -> $rxb2"
must "ipip-cross-subnet: cB -> cA across the tunnel" ping_from cB "$(ctr_ip A)"
must "ipip-cross-subnet: cB -> cC across the tunnel" ping_from cB "$(ctr_ip C)"
must "ipip-cross-subnet: cA -> cB full-size DF packet ($TUNNEL_MTU-byte MTU path)" ping_from cA "$(ctr_ip B)" -M do -s $((TUNNEL_MTU - 28))
txa=$(tx_packets A); txc=$(tx_packets C)
must "ipip-cross-subnet: cA -> cC on the shared subnet" ping_from cA "$(ctr_ip C)"
txa2=$(tx_packets A); txc2=$(tx_packets C)
[ "$txa2" = "$txa" ] && [ "$txc2" = "$txc" ] &&
  ok "same subnet: cA <-> cC did not use tunl0 (tx A $txa, C $txc unchanged)" ||
  fail "same subnet: tunl0 used: nodeA tx $txa -> $txa2, nodeC tx $txc -> $txc2"

# ---------------------------------------------------------------- ipip (always)
phase "ipip (always): agents restarted, containers stay"
stop_agents
start_agents ipip
converge
wait_for 5 sh -c "$IP -n nodeA -o route show $(node_block C) proto $PROTO | grep -q tunl0" || true
show_routes
rC=$(kroute A "$(node_block C)")
case "$rC" in
  *"via 192.168.10.3 dev tunl0"*onlink*) ok "ipip: nodeA's route to C's block now goes through tunl0 ($rC)" ;;
  *) fail "ipip: nodeA's route to C's block is '$rC', want via 192.168.10.3 dev tunl0 onlink" ;;
esac
txa=$(tx_packets A); rxc=$(rx_packets C)
must "ipip: cA -> cC through the tunnel inside the subnet" ping_from cA "$(ctr_ip C)"
txa2=$(tx_packets A); rxc2=$(rx_packets C)
[ "$txa2" -gt "$txa" ] && [ "$rxc2" -gt "$rxc" ] &&
  ok "ipip: tunl0 counters moved: nodeA tx $txa -> $txa2, nodeC rx $rxc -> $rxc2" ||
  fail "ipip: tunl0 not used for cA -> cC: nodeA tx $txa -> $txa2, nodeC rx $rxc -> $rxc2"
must "ipip: cA -> cB still across the tunnel" ping_from cA "$(ctr_ip B)"
must "ipip: cC -> cB across the tunnel" ping_from cC "$(ctr_ip B)"

# ---------------------------------------------------------------- negative control
phase "negative control: encapsulation none, agents restarted, containers stay"
stop_agents
start_agents none
# No route of ours may keep using the tunnel: the plain routes to B's block (next hop
# outside the subnet) are refused by the kernel, and the tunnel routes they were to
# replace must go within the agents' retry second.
no_tunnel_routes() {
  for n in $NODES; do
    in_ns "node$n" "$IP" route show proto "$PROTO" | grep -q tunl0 && return 1
  done
  return 0
}
converge
if wait_for 3 no_tunnel_routes; then
  ok "none: no route of any node goes through tunl0 any more"
else
  fail "none: routes through tunl0 left: $(for n in $NODES; do in_ns "node$n" "$IP" -o route show proto "$PROTO" | grep tunl0; done | tr '\n' ';')"
fi
# The tunl0 address went back to the IPAM: it must be off the device, or the
# next container could get an address that tunl0 still holds.
for n in $NODES; do
  a=$(in_ns "node$n" "$IP" -4 -o addr show dev tunl0)
  if [ -z "$a" ]; then
    ok "none: node$n's tunl0 holds no address any more"
  else
    fail "none: node$n's tunl0 still holds an address: $a"
  fi
done
show_routes
# The agent learned B's block: only the dataplane can keep cA from reaching cB.
tortie_cli A routes "$(node_block B)" -o json >/tmp/routes.A 2>&1
if grep -q '"installed": false' /tmp/routes.A && grep -q '"next_hop": "192.168.20.2"' /tmp/routes.A; then
  ok "none: nodeA learned B's block via 192.168.20.2, not installed ($(sed -n 's/.*"not_installed": "\(.*\)".*/\1/p' /tmp/routes.A))"
else
  fail "none: nodeA's tortie routes $(node_block B): $(tr -d '\n' </tmp/routes.A)"
fi
rC=$(kroute A "$(node_block C)")
case "$rC" in
  *"via 192.168.10.3 dev eth0"*) ok "none: nodeA's route to C's block is plain ($rC)" ;;
  *) fail "none: nodeA's route to C's block is '$rC', want via 192.168.10.3 dev eth0" ;;
esac
must "none: cA -> cC on the shared subnet (plain route)" ping_from cA "$(ctr_ip C)"
must "none: cA -> cB across the router must fail (no pod routes on the router)" no_ping_from cA "$(ctr_ip B)"
must "none: cB -> cA across the router must fail" no_ping_from cB "$(ctr_ip A)"

phase "stop"
stop_agents
[ -s /tmp/failures ] && dump_logs

phase "end"
[ ! -s /tmp/failures ]
