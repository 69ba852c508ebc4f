# Sourced by /init inside the test guest (busybox ash). See docs/vm.md.
#
# Topology (all inside this guest; private addresses only; the guest has no NIC):
#
#   cA 10.244.1.10 ─ nodeA 192.168.10.2/24 ─┐
#                                            br0 192.168.10.1/24 ┐
#   cC 10.244.3.10 ─ nodeC 192.168.10.3/24 ─┘                    router (forwards; no routes
#   cB 10.244.2.10 ─ nodeB 192.168.20.2/24 ───── rB 192.168.20.1/24┘  to any 10.244/16 block)
#
# Node blocks: A 10.244.1.0/24, B 10.244.2.0/24, C 10.244.3.0/24. A and C share a subnet;
# B is behind the router. Containers are attached and routes programmed on each node by
# /ipip_guest (lab/examples/ipip_guest.rs, i.e. the tortie-routes code), run with
# `ip netns exec <node>` so the whole process lives in the node's namespace.
# With /etc/tortie-vm-mode = reference the same steps are done with `ip` commands instead:
# a self-test of the harness and the kernel, not of tortie.
#
# Phases:
#   1. underlay: node to node pings through the router.
#   2. negative control, encapsulation none: the same-subnet path (A<->C) works, the
#      cross-subnet one (A<->B) must NOT (the router has no routes to pod blocks).
#   3. ipip-cross-subnet: kernel routes are `<B block> via 192.168.20.2 dev tunl0 onlink`
#      but `<C block> via 192.168.10.3 dev eth0` (no tunnel inside the subnet); A<->B, B<->C
#      and A<->C pings pass; tunl0 counters prove which pings took the tunnel.
#   4. ipip (always): now A<->C goes through tunl0 as well (counters move), A<->B still works.

IP=/usr/bin/ip
PING=/usr/bin/ping
G=/ipip_guest
MODE=$(cat /etc/tortie-vm-mode)
PROTO=149
: >/tmp/failures

now() { cut -d' ' -f1 /proc/uptime; }
phase() { echo "== $* (t=$(now) s)"; }
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$*" >>/tmp/failures; }
# must DESC CMD...: run CMD (echoed), record a failure if it fails.
must() {
  d=$1; shift
  if "$@"; then ok "$d"; else fail "$d"; fi
}
# x CMD...: set-up step; a failure here is recorded and aborts the scenario.
x() {
  if ! "$@"; then
    fail "setup step failed: $*"
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
tx_packets() { in_ns "$1" cat /sys/class/net/tunl0/statistics/tx_packets; }
rx_packets() { in_ns "$1" cat /sys/class/net/tunl0/statistics/rx_packets; }

# --- node data: name addr/len gateway block tunnel-address container-id container-ip
NODES="A B C"
node_addr() { case $1 in A) echo 192.168.10.2/24 ;; B) echo 192.168.20.2/24 ;; C) echo 192.168.10.3/24 ;; esac; }
node_ip() { node_addr "$1" | cut -d/ -f1; }
node_gw() { case $1 in B) echo 192.168.20.1 ;; *) echo 192.168.10.1 ;; esac; }
node_block() { case $1 in A) echo 10.244.1.0/24 ;; B) echo 10.244.2.0/24 ;; C) echo 10.244.3.0/24 ;; esac; }
node_tunl() { case $1 in A) echo 10.244.1.1 ;; B) echo 10.244.2.1 ;; C) echo 10.244.3.1 ;; esac; }
ctr_ip() { case $1 in A) echo 10.244.1.10 ;; B) echo 10.244.2.10 ;; C) echo 10.244.3.10 ;; esac; }
peers_of() { # "--peer block,nexthop" for every other node
  for o in $NODES; do [ "$o" = "$1" ] || printf -- '--peer %s,%s ' "$(node_block "$o")" "$(node_ip "$o")"; done
}

# --- the two implementations of "attach containers" and "program routes" on a node ---
attach_node() { # attach_node N
  n=$1
  if [ "$MODE" = tortie ]; then
    in_ns "node$n" "$G" attach --node-addr "$(node_addr "$n")" --encap ipip-cross-subnet \
      --container "c-$n,/run/netns/c$n,$(ctr_ip "$n")"
  else
    c=c$n; h=tt$n; cip=$(ctr_ip "$n")
    in_ns "node$n" sh -c "
      $IP link add $h mtu 1480 type veth peer name eth0 mtu 1480 netns /run/netns/$c &&
      $IP link set $h up &&
      echo 1 >/proc/sys/net/ipv4/conf/$h/proxy_arp &&
      echo 0 >/proc/sys/net/ipv4/neigh/$h/proxy_delay &&
      echo 1 >/proc/sys/net/ipv4/conf/$h/forwarding &&
      echo 1 >/proc/sys/net/ipv4/ip_forward &&
      $IP route add $cip/32 dev $h scope link proto $PROTO" &&
    in_ns "$c" sh -c "
      $IP addr add $cip/32 dev eth0 && $IP link set eth0 up &&
      $IP route add 169.254.1.1 dev eth0 scope link &&
      $IP route add default via 169.254.1.1 dev eth0"
  fi
}
program_node() { # program_node N ENCAP
  n=$1; encap=$2
  if [ "$MODE" = tortie ]; then
    # shellcheck disable=SC2046
    in_ns "node$n" "$G" routes --node-addr "$(node_addr "$n")" --block "$(node_block "$n")" \
      --tunnel-addr "$(node_tunl "$n")" --encap "$encap" $(peers_of "$n")
  else
    for o in $NODES; do in_ns "node$n" "$IP" route del "$(node_block "$o")" proto "$PROTO" 2>/dev/null; done
    in_ns "node$n" sh -c "$IP route replace blackhole $(node_block "$n") proto $PROTO"
    for o in $NODES; do
      [ "$o" = "$n" ] && continue
      if [ "$encap" = none ]; then
        in_ns "node$n" "$IP" route replace "$(node_block "$o")" via "$(node_ip "$o")" proto "$PROTO" ||
          echo "    (reference: kernel refused a plain route via $(node_ip "$o"))"
      elif [ "$encap" = ipip-cross-subnet ] && [ "$(node_gw "$o")" = "$(node_gw "$n")" ]; then
        in_ns "node$n" "$IP" route replace "$(node_block "$o")" via "$(node_ip "$o")" dev eth0 proto "$PROTO"
      else
        in_ns "node$n" sh -c "$IP link set tunl0 mtu 1480 up && $IP addr replace $(node_tunl "$n")/32 dev tunl0 &&
          $IP route replace $(node_block "$o") via $(node_ip "$o") dev tunl0 onlink proto $PROTO"
      fi
    done
    # `ip route replace` of the rows above is "set"; the blackhole route stays in both modes.
    true
  fi
}
show_routes() { in_ns "node$1" "$IP" route show proto "$PROTO" | sed "s/^/    node$1: /"; }

# ---------------------------------------------------------------- topology
phase "topology (mode $MODE)"
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
link add rA type veth peer name eth0 netns nodeA
link add rB type veth peer name eth0 netns nodeB
link add rC type veth peer name eth0 netns nodeC
link set rA master br0
link set rC master br0
addr add 192.168.20.1/24 dev rB
link set rA up
link set rB up
link set rC up
CMDS
for n in A B C; do
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

phase "attach containers"
for n in $NODES; do x attach_node "$n"; done
must "container cA -> its host nodeA" ping_from cA 192.168.10.2

# ---------------------------------------------------------------- negative control
phase "negative control: encapsulation none"
for n in $NODES; do
  # Exit 1 = the kernel refused some route (a plain route to a next hop in another subnet has
  # no on-link path); anything else is a real failure of the program.
  program_node "$n" none
  rc=$?
  case $rc in
    0) ;;
    1) echo "    (node$n: the kernel refused some routes with encapsulation none, see above)" ;;
    *) fail "node$n: programming with encapsulation none failed (exit $rc)"; exit 1 ;;
  esac
  show_routes "$n"
done
must "none: cA -> cC on the shared subnet (plain route)" ping_from cA 10.244.3.10
must "none: cA -> cB across the router must fail (no pod routes on the router)" no_ping_from cA 10.244.2.10
must "none: cB -> cA across the router must fail" no_ping_from cB 10.244.1.10

# ---------------------------------------------------------------- ipip-cross-subnet
phase "ipip-cross-subnet"
for n in $NODES; do
  x program_node "$n" ipip-cross-subnet
  show_routes "$n"
done
rA=$(in_ns nodeA "$IP" -o route show "$(node_block B)" proto "$PROTO")
rC=$(in_ns nodeA "$IP" -o route show "$(node_block C)" proto "$PROTO")
case "$rA" in
  *"via 192.168.20.2 dev tunl0"*onlink*) ok "nodeA: route to B's block goes through tunl0 onlink ($rA)" ;;
  *) fail "nodeA: route to B's block is '$rA', want via 192.168.20.2 dev tunl0 onlink" ;;
esac
case "$rC" in
  *tunl0*) fail "nodeA: route to C's block uses the tunnel inside the subnet: '$rC'" ;;
  *"via 192.168.10.3 dev eth0"*) ok "nodeA: route to C's block is plain inside the subnet ($rC)" ;;
  *) fail "nodeA: route to C's block is '$rC', want via 192.168.10.3 dev eth0" ;;
esac
tunl=$(in_ns nodeA "$IP" -o addr show dev tunl0)
case "$tunl" in
  *"inet 10.244.1.1/"*) ok "nodeA: tunl0 has 10.244.1.1 from the node's block" ;;
  *) fail "nodeA: tunl0 address: '$tunl'" ;;
esac
mtu=$(in_ns nodeA cat /sys/class/net/tunl0/mtu)
[ "$mtu" = 1480 ] && ok "nodeA: tunl0 mtu 1480 (underlay 1500 - 20)" || fail "nodeA: tunl0 mtu $mtu, want 1480"

txa=$(tx_packets nodeA); rxb=$(rx_packets nodeB)
must "ipip: cA -> cB across the tunnel" ping_from cA 10.244.2.10
txa2=$(tx_packets nodeA); rxb2=$(rx_packets nodeB)
[ "$txa2" -gt "$txa" ] && [ "$rxb2" -gt "$rxb" ] &&
  ok "tunl0 counters moved: nodeA tx $txa -> $txa2, nodeB rx $rxb -> $rxb2" ||
  fail "tunl0 counters did not move: nodeA tx $txa -> $txa2, nodeB rx $rxb -> $rxb2"
must "ipip: cB -> cA across the tunnel" ping_from cB 10.244.1.10
must "ipip: cB -> cC across the tunnel" ping_from cB 10.244.3.10
must "ipip: cA -> cB full-size DF packet (1480-byte MTU path)" ping_from cA 10.244.2.10 -M do -s 1452
txa=$(tx_packets nodeA); txc=$(tx_packets nodeC)
must "same subnet: cA -> cC" ping_from cA 10.244.3.10
txa2=$(tx_packets nodeA); txc2=$(tx_packets nodeC)
[ "$txa2" = "$txa" ] && [ "$txc2" = "$txc" ] &&
  ok "same subnet: cA <-> cC did not use tunl0 (tx A $txa, C $txc unchanged)" ||
  fail "same subnet: tunl0 used: nodeA tx $txa -> $txa2, nodeC tx $txc -> $txc2"

if [ "$MODE" = tortie ]; then
  # An agent restart over unchanged state adopts its routes, tunnel ones included, and must
  # not rewrite any: the kernel's view of `via … dev tunl0 onlink` equals the desired route.
  out=$(program_node A ipip-cross-subnet)
  echo "$out" | grep '^stats:' | sed 's/^/    nodeA re-run: /'
  case "$out" in
    *"stats: adopted 4 writes 0 swept 0 "*) ok "nodeA: re-running the route programming adopts all 4 routes and writes nothing" ;;
    *) fail "nodeA: re-running the route programming was not a no-op" ;;
  esac
fi

# ---------------------------------------------------------------- ipip (always)
phase "ipip (always)"
for n in $NODES; do
  x program_node "$n" ipip
  show_routes "$n"
done
rC=$(in_ns nodeA "$IP" -o route show "$(node_block C)" proto "$PROTO")
case "$rC" in
  *"via 192.168.10.3 dev tunl0"*onlink*) ok "ipip: nodeA's route to C's block now goes through tunl0 ($rC)" ;;
  *) fail "ipip: nodeA's route to C's block is '$rC', want via 192.168.10.3 dev tunl0 onlink" ;;
esac
txa=$(tx_packets nodeA); rxc=$(rx_packets nodeC)
must "ipip: cA -> cC through the tunnel inside the subnet" ping_from cA 10.244.3.10
txa2=$(tx_packets nodeA); rxc2=$(rx_packets nodeC)
[ "$txa2" -gt "$txa" ] && [ "$rxc2" -gt "$rxc" ] &&
  ok "ipip: tunl0 counters moved: nodeA tx $txa -> $txa2, nodeC rx $rxc -> $rxc2" ||
  fail "ipip: tunl0 not used for cA -> cC: nodeA tx $txa -> $txa2, nodeC rx $rxc -> $rxc2"
must "ipip: cA -> cB still across the tunnel" ping_from cA 10.244.2.10

phase "end"
[ ! -s /tmp/failures ]
