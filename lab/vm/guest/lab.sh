# Sourced by /init inside the test guest (busybox ash) in `run-guest --lab` mode. See docs/vm.md.
#
# Plays a containerlab topology file with the real runner, as CI does on the host for the other
# topologies, but on the guest's stock kernel (it has `ipip`):
#
#   1. `tortie-lab up FILE` (namespaces, veths, exec lines, one `tortie run` per node, containers);
#   2. every tortie node's `tortie status -o json` shows as many peers as its config has
#      `[[peer]]` tables, all Established (polled, 30 s at most);
#   3. every container pings every other container (3 echoes, all answered) through
#      `tortie-lab exec FILE node/id -- ping`;
#   4. per node and per other tortie node, the kernel route to the other's pod block matches the
#      node's encapsulation: `via <addr> dev tunl0 onlink` for ipip, and for ipip-cross-subnet
#      when the other node's address is outside this node's subnet; no tunl0 otherwise;
#      a container ping across the tunnel moves the sender's tunl0 TX counter;
#   5. `tortie-lab down FILE`; no namespace of the lab, no work dir and no tortie process is left.
#
# The file is named by /etc/tortie-vm-lab; the binaries tortie and tortie-lab are in /usr/bin.

# iproute2, iputils, dash (as sh) and procps sysctl first, for the runner and what it runs:
# busybox's `ip` has no `netns`, its `ping` prints other summaries. This script itself runs in
# busybox ash, which prefers its applets to PATH: it calls iproute2 as $IP.
export PATH=/usr/bin:/bin
IP=/usr/bin/ip
export TORTIE_LAB_DIR=/run/tortie-lab
export TORTIE_BIN=/usr/bin/tortie
export RUST_LOG=info
TOPO=$(cat /etc/tortie-vm-lab)
LABBIN=/usr/bin/tortie-lab
: >/tmp/failures

now() { cut -d' ' -f1 /proc/uptime; }
phase() { echo "== $* (t=$(now) s)"; }
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; echo "$*" >>/tmp/failures; }
lab() { "$LABBIN" "$@"; }
lx() { # lx TARGET CMD...: run CMD in a node or node/container
  t=$1; shift
  "$LABBIN" exec "$TOPO" "$t" -- "$@"
}
# toml_get FILE SECTION KEY: the string or number value of KEY in [SECTION] (flat tables only).
toml_get() {
  awk -v sec="[$2]" -v key="$3" '
    /^\[/ { insec = ($0 == sec); next }
    insec && $1 == key && $2 == "=" { v = $3; gsub(/"/, "", v); print v; exit }' "$1"
}
dump_logs() {
  for f in "$WORK"/*/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f (last 15 lines)"
    tail -n 15 "$f"
  done
}
down_and_exit() {
  lab down "$TOPO" || true
  exit 1
}

phase "up $TOPO"
t_up=$(now)
if ! timeout 60 "$LABBIN" up "$TOPO" >/tmp/up.out 2>&1; then
  cat /tmp/up.out
  fail "tortie-lab up $TOPO"
  down_and_exit
fi
cat /tmp/up.out
LAB=$(sed -n 's/^lab \([^ ]*\) is up (work dir \(.*\))$/\1/p' /tmp/up.out)
WORK=$(sed -n 's/^lab \([^ ]*\) is up (work dir \(.*\))$/\2/p' /tmp/up.out)
[ -n "$LAB" ] && [ -d "$WORK" ] || { fail "cannot read the lab name and work dir from up's output"; down_and_exit; }
ok "tortie-lab up took $(awk -v a="$t_up" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
# "  node/id  address" lines of up's output.
CONTAINERS=$(awk 'NF == 2 && $1 ~ /\// { print $1 "=" $2 }' /tmp/up.out)
# Tortie nodes: the ones the runner wrote a tortie.toml for.
TNODES=""
for f in "$WORK"/*/tortie.toml; do
  [ -f "$f" ] && TNODES="$TNODES $(basename "$(dirname "$f")")"
done
echo "    tortie nodes:$TNODES; containers: $(echo $CONTAINERS)"
[ -n "$TNODES" ] || { fail "no tortie node in $TOPO"; down_and_exit; }
[ -n "$CONTAINERS" ] || { fail "no container in $TOPO"; down_and_exit; }
# What the runner runs in a node (its wrapper, exec lines) must find iproute2, as on the host.
n0=${TNODES# }; n0=${n0%% *}
v=$(lx "$n0" sh -c 'ip -V' 2>&1 | head -n 1)
case "$v" in
  *iproute2*) ok "sh -c 'ip' in a node runs iproute2 ($v)" ;;
  *) fail "sh -c 'ip -V' in $n0 is not iproute2: $v"; down_and_exit ;;
esac

phase "BGP sessions"
# established NODE: 0 when `tortie status -o json` lists the configured number of peers, all
# Established (pretty JSON: only peer objects carry a "state" key).
established() {
  want=$(grep -c '^\[\[peer\]\]' "$WORK/$1/tortie.toml")
  lx "$1" tortie status -o json >/tmp/status.$1 2>&1 || return 1
  have=$(grep -c '"state": "' /tmp/status.$1)
  est=$(grep -c '"state": "Established"' /tmp/status.$1)
  [ "$want" -gt 0 ] && [ "$have" -eq "$want" ] && [ "$est" -eq "$want" ]
}
t_bgp=$(now)
deadline=$(awk -v t="$t_bgp" 'BEGIN { printf "%d", t + 30 }')
pending="$TNODES"
while [ -n "$pending" ]; do
  still=""
  for n in $pending; do established "$n" || still="$still $n"; done
  pending="$still"
  [ -z "$pending" ] && break
  if [ "$(cut -d. -f1 /proc/uptime)" -ge "$deadline" ]; then break; fi
  sleep 0.5
done
for n in $TNODES; do
  peers=$(grep -c '"state": "' /tmp/status.$n 2>/dev/null)
  case " $pending " in
    *" $n "*)
      fail "$n: not every configured peer Established within 30 s"
      grep -E '"(address|state|info)":' /tmp/status.$n | sed "s/^/    $n: /" ;;
    *) ok "$n: all $peers configured peers Established (tortie status -o json)" ;;
  esac
done
echo "    sessions up $(awk -v a="$t_bgp" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s after up"
if [ -n "$pending" ]; then dump_logs; down_and_exit; fi

phase "routes"
# The blocks of every tortie node must be learned before pinging: wait until each node has a
# kernel route for each other node's block (5 s at most).
for n in $TNODES; do
  for m in $TNODES; do
    [ "$m" = "$n" ] && continue
    block=$(toml_get "$WORK/$m/tortie.toml" node pod_cidr)
    i=0
    while [ -z "$(lx "$n" ip -o route show "$block" 2>/dev/null)" ] && [ "$i" -lt 10 ]; do
      sleep 0.5; i=$((i + 1))
    done
  done
done
# net_of CIDR: the network address (busybox ipcalc).
net_of() { ipcalc -n "$1" | cut -d= -f2; }
for n in $TNODES; do
  cfg="$WORK/$n/tortie.toml"
  encap=$(toml_get "$cfg" dataplane encapsulation)
  [ -n "$encap" ] || encap=none
  naddr=$(toml_get "$cfg" node address)
  nlen=${naddr#*/}
  lx "$n" ip route show | sed "s/^/    $n: /"
  for m in $TNODES; do
    [ "$m" = "$n" ] && continue
    mcfg="$WORK/$m/tortie.toml"
    block=$(toml_get "$mcfg" node pod_cidr)
    maddr=$(toml_get "$mcfg" node address)
    mip=${maddr%/*}
    if [ "$(net_of "$naddr")" = "$(net_of "$mip/$nlen")" ]; then same=1; else same=0; fi
    case "$encap/$same" in
      ipip/*|ipip-cross-subnet/0) tunnel=1 ;;
      *) tunnel=0 ;;
    esac
    r=$(lx "$n" ip -o route show "$block")
    if [ "$tunnel" -eq 1 ]; then
      case "$r" in
        *"via $mip dev tunl0 "*onlink*) ok "$n ($encap): route to $m's $block goes through tunl0 onlink: $r" ;;
        *) fail "$n ($encap): route to $m's $block is '$r', want via $mip dev tunl0 onlink" ;;
      esac
    else
      case "$r" in
        *tunl0*) fail "$n ($encap): route to $m's $block (same subnet) uses the tunnel: '$r'" ;;
        *"via $mip dev "*) ok "$n ($encap): route to $m's $block is plain: $r" ;;
        *) fail "$n ($encap): route to $m's $block is '$r', want via $mip without tunl0" ;;
      esac
    fi
  done
done

phase "container pings"
tried=0
failed=0
for a in $CONTAINERS; do
  for b in $CONTAINERS; do
    [ "$a" = "$b" ] && continue
    src=${a%%=*}; dst=${b%%=*}; addr=${b#*=}
    tried=$((tried + 1))
    if lx "$src" ping -n -q -c 3 -i 0.2 -W 2 "$addr" >/tmp/ping.out 2>&1 &&
      grep -q '3 packets transmitted, 3 received' /tmp/ping.out; then
      echo "    $src -> $dst ($addr): $(grep 'packets' /tmp/ping.out)"
    else
      failed=$((failed + 1))
      fail "ping $src -> $dst ($addr): $(grep -E 'packets|ping:' /tmp/ping.out | tr '\n' ' ')"
    fi
  done
done
[ "$failed" -eq 0 ] && ok "all $tried container pairs ping (3/3 each)" || echo "    $failed of $tried pairs failed"

# tunl0 evidence: a ping from a container of the first node to one of every node it tunnels to
# moves the first node's tunl0 TX counter.
first=${TNODES# }; first=${first%% *}
fcfg="$WORK/$first/tortie.toml"
fencap=$(toml_get "$fcfg" dataplane encapsulation)
fsrc=$(echo "$CONTAINERS" | awk -F= -v n="$first" 'index($1, n "/") == 1 { print $1; exit }')
if [ -n "$fsrc" ] && [ "$fencap" != none ] && [ -n "$fencap" ]; then
  for b in $CONTAINERS; do
    dnode=${b%%/*}; addr=${b#*=}; dst=${b%%=*}
    [ "$dnode" = "$first" ] && continue
    r=$(lx "$first" ip -o route get "$addr")
    tx=$(lx "$first" cat /sys/class/net/tunl0/statistics/tx_packets)
    lx "$fsrc" ping -n -q -c 2 -i 0.2 -W 2 "$addr" >/dev/null 2>&1
    tx2=$(lx "$first" cat /sys/class/net/tunl0/statistics/tx_packets)
    case "$r" in
      *tunl0*)
        [ "$tx2" -gt "$tx" ] && ok "$fsrc -> $dst crossed $first's tunl0 (tx $tx -> $tx2)" ||
          fail "$fsrc -> $dst: $first's tunl0 tx did not move ($tx -> $tx2)" ;;
      *)
        [ "$tx2" = "$tx" ] && ok "$fsrc -> $dst stayed off $first's tunl0 (tx $tx unchanged)" ||
          fail "$fsrc -> $dst: $first's tunl0 tx moved ($tx -> $tx2) on a plain route" ;;
    esac
  done
fi

phase "status"
lab status "$TOPO" | sed 's/^/    /'
[ -s /tmp/failures ] && dump_logs

phase "down"
t_down=$(now)
if lab down "$TOPO"; then
  ok "tortie-lab down took $(awk -v a="$t_down" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
else
  fail "tortie-lab down $TOPO"
fi
if "$IP" netns list >/tmp/netns.out 2>&1; then
  left=$(grep -c "^clab-$LAB-" /tmp/netns.out)
  [ "$left" -eq 0 ] && ok "no namespace of lab $LAB left" || fail "$left namespaces of lab $LAB left: $(tr '\n' ' ' </tmp/netns.out)"
else
  fail "ip netns list: $(cat /tmp/netns.out)"
fi
[ ! -e "$WORK" ] && ok "work dir $WORK removed" || fail "work dir $WORK still exists"
pids=$(pidof tortie || true)
[ -z "$pids" ] && ok "no tortie process left" || fail "tortie processes left: $pids"
out=$(lab down "$TOPO")
case "$out" in
  *"nothing to do"*) ok "a second down is a no-op" ;;
  *) fail "second down: $out" ;;
esac

phase "end"
[ ! -s /tmp/failures ]
