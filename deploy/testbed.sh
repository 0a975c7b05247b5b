#!/usr/bin/env bash
# deploy/testbed.sh: the veth testbed of xdp-tcp, in network namespaces.
#
#   client ns  ⇄  [router ns]  ⇄  server ns
#
# The server namespace holds the interface the AF_XDP stack runs on; the
# client namespace holds a kernel TCP peer; the optional router namespace
# either routes between two subnets and can drop packets at random
# (--router [--loss], nftables numgen), or has no addresses at all and
# leaves bridging the one shared subnet to `xdp-tcp impair` (--bridge).
# Nothing is created in the root namespace: the veth ends are created
# directly inside their namespaces, routes exist only inside them, and the
# root namespace's interfaces, routes and sysctls are never touched.
#
# Run `deploy/testbed.sh --help` for the commands and options, and see
# deploy/README.md for the address plan and the reasons behind each setting.
set -Eeuo pipefail

ME="deploy/testbed.sh"

usage() {
  cat <<'EOF'
usage: deploy/testbed.sh up|down|status|offloads [options]

commands:
  up       create the namespaces and veths, print key=value facts on stdout
  down     delete everything of the prefix (idempotent)
  status   show what exists for the prefix (exit 0 up, 1 partial, 3 down)
  offloads set the kernel offloads of a running testbed's client and/or
           server interface (--client-offloads, --server-offloads)

options (each also settable through the environment variable shown):
  --prefix NAME     namespace/interface prefix, 1-12 of [A-Za-z0-9_-],
                    starting with a letter or digit        [TESTBED_PREFIX, xt]
  --queues N        rx/tx queues on every veth end, 1-256  [TESTBED_QUEUES, 1]
  --router          put a routing namespace between client and server
                    (two subnets, IP forwarding)           [TESTBED_ROUTER=1]
  --loss PERMILLE   with --router: drop PERMILLE/1000 of forwarded packets
                    at random, 0-1000                      [TESTBED_LOSS]
  --bridge          put a bridging namespace between client and server: one
                    subnet, no addresses or forwarding in the router, its
                    interfaces promiscuous with offloads off; nothing
                    passes until a relay bridges them, e.g.
                      ip netns exec <prefix>-rtr xdp-tcp impair \
                        --a <prefix>-rc --b <prefix>-rs --delay 20ms
                                                           [TESTBED_BRIDGE=1]
  --mtu N           MTU of every veth, 68-65535            [TESTBED_MTU, 1500]
  --client-addrs N  N extra client addresses (.3, .4, ... of the client's
                    subnet) on <prefix>-c0, 0-252, for more connections
                    than one address's port space       [TESTBED_CLIENT_ADDRS, 0]
  --client-offloads off|on|no-csum
                    kernel offloads of <prefix>-c0: off = transmit checksum,
                    TSO, GSO and GRO off (a quiet sender, what an AF_XDP
                    peer needs); on = all four on; no-csum = GSO and GRO on,
                    transmit checksum and TSO off (the most a kernel end
                    can keep facing the AF_XDP stack)
                                               [TESTBED_CLIENT_OFFLOADS, off]
  --server-offloads keep|off|on|no-csum
                    the same for <prefix>-s0 when the server is a kernel
                    (kernel-serve); keep leaves the kernel's defaults (off
                    with --bridge)          [TESTBED_SERVER_OFFLOADS, keep]
  --qdisc noqueue|pfifo_fast|pfifo
                    root queueing discipline of <prefix>-c0 and <prefix>-s0.
                    A veth has none (noqueue): when the peer runs XDP, a
                    full 256-frame receive ring drops what is sent to it;
                    with a qdisc the veth stops its queue instead (Linux
                    6.17+) and the qdisc holds the frames, as a NIC's
                    transmit queue does          [TESTBED_QDISC, noqueue]
  -h, --help        this text

namespaces: <prefix>-srv, <prefix>-cli, <prefix>-rtr (with --router or --bridge)
interfaces: <prefix>-s0 (server), <prefix>-c0 (client),
            <prefix>-rs / <prefix>-rc (router, server- / client-facing)
EOF
}

# Bad arguments: say what to fix, show the usage, exit 2.
bad_usage() {
  echo "$ME: $*" >&2
  echo "run '$ME --help' for the commands and options" >&2
  exit 2
}

die() {
  echo "$ME: error: $*" >&2
  exit 1
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]] && [ "${#1}" -le 9 ]; }

# ---------------------------------------------------------------- arguments

cmd=""
prefix="${TESTBED_PREFIX:-xt}"
queues="${TESTBED_QUEUES:-1}"
mtu="${TESTBED_MTU:-1500}"
loss="${TESTBED_LOSS:-}"
client_addrs="${TESTBED_CLIENT_ADDRS:-0}"
client_offloads="${TESTBED_CLIENT_OFFLOADS:-}"
server_offloads="${TESTBED_SERVER_OFFLOADS:-}"
qdisc="${TESTBED_QDISC:-noqueue}"
case "${TESTBED_ROUTER:-0}" in
  1 | yes | true | on) router=1 ;;
  0 | no | false | off | "") router=0 ;;
  *) bad_usage "TESTBED_ROUTER='${TESTBED_ROUTER}': use 1 or 0" ;;
esac
case "${TESTBED_BRIDGE:-0}" in
  1 | yes | true | on) bridge=1 ;;
  0 | no | false | off | "") bridge=0 ;;
  *) bad_usage "TESTBED_BRIDGE='${TESTBED_BRIDGE}': use 1 or 0" ;;
esac

while [ "$#" -gt 0 ]; do
  arg="$1"
  shift
  value=""
  has_inline_value=0
  if [[ "$arg" == --*=* ]]; then
    value="${arg#*=}"
    arg="${arg%%=*}"
    has_inline_value=1
  fi
  case "$arg" in
    --prefix | --queues | --loss | --mtu | --client-addrs | --client-offloads | --server-offloads | --qdisc)
      if [ "$has_inline_value" -eq 0 ]; then
        [ "$#" -gt 0 ] || bad_usage "$arg needs a value"
        value="$1"
        shift
      fi
      case "$arg" in
        --prefix) prefix="$value" ;;
        --queues) queues="$value" ;;
        --loss) loss="$value" ;;
        --mtu) mtu="$value" ;;
        --client-addrs) client_addrs="$value" ;;
        --client-offloads) client_offloads="$value" ;;
        --server-offloads) server_offloads="$value" ;;
        --qdisc) qdisc="$value" ;;
      esac
      ;;
    --router)
      [ "$has_inline_value" -eq 0 ] || bad_usage "--router takes no value"
      router=1
      ;;
    --bridge)
      [ "$has_inline_value" -eq 0 ] || bad_usage "--bridge takes no value"
      bridge=1
      ;;
    -h | --help | help)
      usage
      exit 0
      ;;
    up | down | status | offloads)
      [ -z "$cmd" ] || bad_usage "two commands given ('$cmd' and '$arg'): give one of up, down, status, offloads"
      cmd="$arg"
      ;;
    -*) bad_usage "unknown option '$arg'" ;;
    *) bad_usage "unknown command '$arg': use up, down, status or offloads" ;;
  esac
done

[ -n "$cmd" ] || bad_usage "no command: give one of up, down, status, offloads"

# Interface names are <prefix>-s0 etc. and must fit IFNAMSIZ-1 = 15 chars.
[[ "$prefix" =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,11}$ ]] ||
  bad_usage "--prefix '$prefix': use 1-12 characters of [A-Za-z0-9_-] starting with a letter or digit (interface names <prefix>-s0 must fit in 15 characters)"
if ! is_uint "$queues" || [ "$queues" -lt 1 ] || [ "$queues" -gt 256 ]; then
  bad_usage "--queues '$queues': use a whole number from 1 to 256"
fi
if ! is_uint "$mtu" || [ "$mtu" -lt 68 ] || [ "$mtu" -gt 65535 ]; then
  bad_usage "--mtu '$mtu': use a whole number from 68 to 65535"
fi
if ! is_uint "$client_addrs" || [ "$client_addrs" -gt 252 ]; then
  bad_usage "--client-addrs '$client_addrs': use a whole number from 0 to 252 (the extra addresses are .3 to .254 of the client's /24)"
fi
case "$qdisc" in
  noqueue | pfifo_fast | pfifo) ;;
  *) bad_usage "--qdisc '$qdisc': use noqueue, pfifo_fast or pfifo" ;;
esac
case "$client_offloads" in
  "" | off | on | no-csum) ;;
  *) bad_usage "--client-offloads '$client_offloads': use off, on or no-csum" ;;
esac
case "$server_offloads" in
  "" | keep | off | on | no-csum) ;;
  *) bad_usage "--server-offloads '$server_offloads': use keep, off, on or no-csum" ;;
esac
if [ "$cmd" = offloads ] && [ -z "$client_offloads" ] && [ -z "$server_offloads" ]; then
  bad_usage "offloads: give --client-offloads and/or --server-offloads"
fi
if [ "$bridge" -eq 1 ] && { [ "$client_offloads" = on ] || [ "$server_offloads" = on ]; }; then
  bad_usage "--bridge: the relay copies frames and cannot complete offloaded checksums; use off or no-csum"
fi
if [ "$router" -eq 1 ] && [ "$bridge" -eq 1 ]; then
  bad_usage "--router and --bridge are two different middle namespaces: give one of them"
fi
if [ -n "$loss" ]; then
  if [ "$bridge" -eq 1 ]; then
    bad_usage "--loss is the routed router's nftables drop; with --bridge give the loss to the relay (xdp-tcp impair --loss 1%)"
  fi
  if ! is_uint "$loss" || [ "$loss" -gt 1000 ]; then
    bad_usage "--loss '$loss': use a whole number of per mille from 0 to 1000"
  fi
  [ "$router" -eq 1 ] ||
    bad_usage "--loss needs --router: loss is injected in the router namespace's forward path"
fi

if [ "$(id -u)" -ne 0 ]; then
  die "must run as root: it creates network namespaces and veths (try: sudo $ME $cmd --prefix $prefix)"
fi
command -v ip >/dev/null 2>&1 || die "'ip' not found: install iproute2 (apt-get install iproute2)"

# ---------------------------------------------------------------- names

srv_ns="${prefix}-srv"
cli_ns="${prefix}-cli"
rtr_ns="${prefix}-rtr"
srv_if="${prefix}-s0"     # server end (the AF_XDP stack's interface)
cli_if="${prefix}-c0"     # client end
rtr_cli_if="${prefix}-rc" # router, facing the client
rtr_srv_if="${prefix}-rs" # router, facing the server
all_ns=("$rtr_ns" "$cli_ns" "$srv_ns")
all_if=("$srv_if" "$cli_if" "$rtr_cli_if" "$rtr_srv_if")

ns_exists() {
  local list
  list="$(ip netns list 2>/dev/null | awk '{print $1}')"
  grep -qxF -- "$1" <<<"$list"
}

# Run a command inside a namespace.
in_ns() {
  local ns="$1"
  shift
  ip netns exec "$ns" "$@"
}

# Write a value to a file (sysctl or sysfs) as seen from inside a namespace:
# `ip netns exec` mounts that namespace's /sys and its /proc/sys/net.
ns_write() {
  in_ns "$1" sh -c 'printf "%s\n" "$2" > "$1"' sh "$2" "$3"
}

ns_mac() {
  in_ns "$1" cat "/sys/class/net/$2/address"
}

# ---------------------------------------------------------------- down

do_down() {
  local ns pids name
  # A namespace with processes still inside outlives `ip netns del` (only
  # its name goes), and keeps its veths: kill what runs in it first.
  for ns in "${all_ns[@]}"; do
    if ns_exists "$ns"; then
      pids="$(ip netns pids "$ns" 2>/dev/null || true)"
      if [ -n "$pids" ]; then
        echo "killing processes left in $ns: $(echo $pids)" >&2
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
      fi
    fi
  done
  for ns in "${all_ns[@]}"; do
    if ns_exists "$ns"; then
      ip netns del "$ns"
      echo "deleted namespace $ns" >&2
    fi
  done
  # Deleting a namespace deletes its veths (and their peers). The veths are
  # created inside the namespaces, so nothing should be left in the root
  # namespace; remove a stray veth of exactly our names all the same.
  for name in "${all_if[@]}"; do
    if ip -d link show dev "$name" 2>/dev/null | grep -q 'veth'; then
      ip link del dev "$name" 2>/dev/null || true
      echo "deleted stray interface $name" >&2
    fi
  done
}

# ---------------------------------------------------------------- status

do_status() {
  local ns pids present=0 core=0
  for ns in "$srv_ns" "$cli_ns" "$rtr_ns"; do
    if ns_exists "$ns"; then
      present=$((present + 1))
      [ "$ns" = "$rtr_ns" ] || core=$((core + 1))
      echo "namespace $ns: present"
      ip -n "$ns" -br link show | sed 's/^/  link /'
      ip -n "$ns" -br -4 addr show | sed 's/^/  addr /'
      ip -n "$ns" -4 route show | sed 's/^/  route /'
      if [ "$ns" = "$rtr_ns" ] && command -v nft >/dev/null 2>&1; then
        in_ns "$ns" nft list ruleset | sed 's/^/  nft /'
      fi
      pids="$(ip netns pids "$ns" 2>/dev/null || true)"
      [ -z "$pids" ] || echo "  processes: $(echo $pids)"
    else
      echo "namespace $ns: absent"
    fi
  done
  if [ "$core" -eq 2 ]; then
    echo "state=up"
    return 0
  elif [ "$present" -eq 0 ]; then
    echo "state=down"
    return 3
  else
    echo "state=partial"
    return 1
  fi
}

# ---------------------------------------------------------------- up

# Hex CPU mask (comma-separated 32-bit groups, as sysfs wants) of CPUs $@.
cpu_mask() {
  local -a groups=()
  local c g max=0 out
  for c in "$@"; do
    g=$((c / 32))
    groups[g]=$((${groups[g]:-0} | (1 << (c % 32))))
    if [ "$g" -gt "$max" ]; then max="$g"; fi
  done
  out="$(printf '%x' "${groups[max]:-0}")"
  for ((g = max - 1; g >= 0; g--)); do
    out+="$(printf ',%08x' "${groups[g]:-0}")"
  done
  echo "$out"
}

ncpus() {
  local n
  n="$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
  echo "${n:-1}"
}

# XPS: make a kernel sender's transmit queue a function of its CPU.
# Tx queue q carries what CPUs c with c mod N = q send, and CPU q mod nproc
# in any case (so with N > nproc every queue still has a CPU). With
# N <= nproc, a sender pinned to CPU c (taskset -c c) transmits on queue
# c mod N, and the veth peer receives on rx queue c mod N.
set_xps() {
  local ns="$1" ifname="$2" n="$3" nproc q c
  local -a cpus
  nproc="$(ncpus)"
  # A single-queue device has no XPS (the kernel refuses the write).
  [ "$n" -gt 1 ] || return 0
  if ! in_ns "$ns" test -e "/sys/class/net/$ifname/queues/tx-0/xps_cpus"; then
    echo "warning: no XPS on this kernel; $ifname's tx queue follows the flow hash" >&2
    return 0
  fi
  for ((q = 0; q < n; q++)); do
    cpus=("$((q % nproc))")
    for ((c = 0; c < nproc; c++)); do
      if [ $((c % n)) -eq "$q" ]; then cpus+=("$c"); fi
    done
    ns_write "$ns" "/sys/class/net/$ifname/queues/tx-$q/xps_cpus" "$(cpu_mask "${cpus[@]}")"
  done
}

# A kernel interface that transmits to the AF_XDP server: the stack does not
# complete partial (offloaded) checksums, so the kernel must compute them;
# no GRO/TSO/GSO so that what is sent is what the tests wrote.
quiet_sender() {
  in_ns "$1" ethtool -K "$2" tx off gro off tso off gso off >/dev/null
}

# Kernel offloads of a kernel end, by level (see --client-offloads):
# off = a quiet sender; on = checksum, TSO, GSO, GRO on; no-csum = GSO and
# GRO (software, and GSO completes checksums in software) but no
# transmit checksum offload, so an AF_XDP peer gets full checksums.
# TSO needs transmit checksums, so it goes with them.
set_offloads() {
  local ns="$1" ifname="$2" level="$3"
  case "$level" in
    off) quiet_sender "$ns" "$ifname" ;;
    on) in_ns "$ns" ethtool -K "$ifname" tx on tso on gso on gro on >/dev/null ;;
    no-csum) in_ns "$ns" ethtool -K "$ifname" tx off tso off gso on gro on >/dev/null ;;
    keep | "") ;;
  esac
}

# The root qdisc of an interface (see --qdisc); a new veth has noqueue.
# A failure returns non-zero after the final ||, so the ERR trap of `up`
# reports it and removes what was created.
set_qdisc() {
  local ns="$1" ifname="$2" kind="$3"
  [ "$kind" = noqueue ] && return 0
  if [ "$queues" -gt 1 ]; then
    # One qdisc per transmit queue under mq, as on a multi-queue NIC.
    in_ns "$ns" tc qdisc replace dev "$ifname" root handle 1: mq ||
      qdisc_failed mq "$ifname" "$ns"
    local i
    for ((i = 1; i <= queues; i++)); do
      in_ns "$ns" tc qdisc replace dev "$ifname" parent "1:$(printf %x "$i")" "$kind" ||
        qdisc_failed "$kind" "$ifname queue $i" "$ns"
    done
  else
    in_ns "$ns" tc qdisc replace dev "$ifname" root "$kind" ||
      qdisc_failed "$kind" "$ifname" "$ns"
  fi
}

qdisc_failed() {
  echo "$ME: cannot set qdisc $1 on $2 in $3 (is the kernel's sch_$1 available? try --qdisc pfifo_fast)" >&2
  return 1
}

# The extra client addresses: .3, .4, ... of the client's /24.
extra_client_addrs() {
  local base="$1" i out=""
  for ((i = 0; i < client_addrs; i++)); do
    out+="${out:+,}${base}.$((3 + i))"
  done
  echo "$out"
}

# IPv6 off in a namespace (set before its veths exist, so they inherit it):
# no router solicitations, DAD or MLD reports on the test links.
no_ipv6() {
  local ns="$1" k
  for k in default all; do
    if in_ns "$ns" test -e "/proc/sys/net/ipv6/conf/$k/disable_ipv6"; then
      ns_write "$ns" "/proc/sys/net/ipv6/conf/$k/disable_ipv6" 1
    fi
  done
}

new_ns() {
  ip netns add "$1"
  created=1
  ip -n "$1" link set lo up
  no_ipv6 "$1"
  ns_write "$1" /proc/sys/net/ipv4/ip_forward 0
}

# veth pair with end $2 in namespace $1 and end $4 in namespace $3.
new_veth() {
  ip link add name "$2" netns "$1" numtxqueues "$queues" numrxqueues "$queues" \
    type veth peer name "$4" netns "$3" numtxqueues "$queues" numrxqueues "$queues"
  ip -n "$1" link set dev "$2" mtu "$mtu"
  ip -n "$3" link set dev "$4" mtu "$mtu"
}

up_failed() {
  local rc="$1" line="$2" where="$3" what="$4"
  trap - ERR INT TERM
  echo "$ME: error: 'up' failed (exit $rc) at line $line in $where: $what" >&2
  if [ "$created" -eq 1 ]; then
    echo "$ME: removing what was created for prefix '$prefix'" >&2
    do_down || true
  fi
  exit 1
}

do_up() {
  local ns gw_ip gw_mac server_ip client_ip
  command -v ethtool >/dev/null 2>&1 || die "'ethtool' not found: install it (apt-get install ethtool)"
  if [ -n "$loss" ]; then
    command -v nft >/dev/null 2>&1 || die "'nft' not found: install nftables (apt-get install nftables)"
  fi
  ip netns list >/dev/null 2>&1 || die "'ip netns' does not work here (no network namespace support?)"
  for ns in "${all_ns[@]}"; do
    if ns_exists "$ns"; then
      die "namespace $ns already exists: remove the old testbed first ($ME down --prefix $prefix)"
    fi
  done

  created=0
  trap 'up_failed $? "$LINENO" "${FUNCNAME[*]:-main} (called from lines ${BASH_LINENO[*]})" "$BASH_COMMAND"' ERR
  trap 'up_failed 130 "$LINENO" "${FUNCNAME[*]:-main}" "interrupted by a signal"' INT TERM

  # Everything below goes to stderr; the facts go to the saved stdout (fd 3).
  exec 3>&1 1>&2

  new_ns "$srv_ns"
  new_ns "$cli_ns"
  # The client namespace is a load generator that closes first: without
  # TIME-WAIT reuse for its outgoing connections (RFC 6191 style, needs
  # timestamps) every connect searches a port space full of TIME-WAIT
  # sockets and the short-connection workload measures that search.
  ns_write "$cli_ns" /proc/sys/net/ipv4/tcp_tw_reuse 1
  if [ "$bridge" -eq 1 ]; then
    new_ns "$rtr_ns"
    new_veth "$cli_ns" "$cli_if" "$rtr_ns" "$rtr_cli_if"
    new_veth "$srv_ns" "$srv_if" "$rtr_ns" "$rtr_srv_if"
    client_ip=198.18.0.2
    server_ip=198.18.0.1
    ip -n "$cli_ns" addr add "$client_ip/24" dev "$cli_if"
    ip -n "$srv_ns" addr add "$server_ip/24" dev "$srv_if"
    # The router has no addresses and does not forward: with ip_forward 0
    # and the frames addressed to other MACs, its kernel drops what it
    # receives. Promiscuous mode, so a relay gets every frame (a veth
    # delivers them anyway; a NIC would filter); offloads off, so frames
    # stay MTU-sized (no GRO/GSO/TSO) and carry full checksums.
    for dev in "$rtr_cli_if" "$rtr_srv_if"; do
      ip -n "$rtr_ns" link set dev "$dev" promisc on up
      in_ns "$rtr_ns" ethtool -K "$dev" tx off gro off tso off gso off >/dev/null
    done
    ip -n "$cli_ns" link set dev "$cli_if" up
    ip -n "$srv_ns" link set dev "$srv_if" up
    # Every kernel sender's frames cross the relay as bytes: checksums must
    # be complete (a relay cannot finish an offloaded one), so the server
    # end too, for kernel traffic from the server namespace.
    quiet_sender "$cli_ns" "$cli_if"
    quiet_sender "$srv_ns" "$srv_if"
    set_xps "$cli_ns" "$cli_if" "$queues"
    set_xps "$rtr_ns" "$rtr_srv_if" "$queues"
    gw_ip="$client_ip"
    gw_mac="$(ns_mac "$cli_ns" "$cli_if")"
  elif [ "$router" -eq 1 ]; then
    new_ns "$rtr_ns"
    new_veth "$cli_ns" "$cli_if" "$rtr_ns" "$rtr_cli_if"
    new_veth "$srv_ns" "$srv_if" "$rtr_ns" "$rtr_srv_if"
    client_ip=198.18.1.2
    server_ip=198.18.2.2
    ip -n "$cli_ns" addr add "$client_ip/24" dev "$cli_if"
    ip -n "$rtr_ns" addr add 198.18.1.1/24 dev "$rtr_cli_if"
    ip -n "$rtr_ns" addr add 198.18.2.1/24 dev "$rtr_srv_if"
    ip -n "$srv_ns" addr add "$server_ip/24" dev "$srv_if"
    for dev in "$rtr_cli_if" "$rtr_srv_if"; do ip -n "$rtr_ns" link set dev "$dev" up; done
    ip -n "$cli_ns" link set dev "$cli_if" up
    ip -n "$srv_ns" link set dev "$srv_if" up
    ip -n "$cli_ns" route add 198.18.2.0/24 via 198.18.1.1 dev "$cli_if"
    ip -n "$srv_ns" route add 198.18.1.0/24 via 198.18.2.1 dev "$srv_if"
    ns_write "$rtr_ns" /proc/sys/net/ipv4/ip_forward 1
    if [ -n "$loss" ]; then
      # numgen random mod 1000 is 0..999, and nft rejects "< 1000" as out of
      # range: 100 % loss is "<= 999".
      local cond="< $loss"
      if [ "$loss" -eq 1000 ]; then cond="<= 999"; fi
      in_ns "$rtr_ns" nft -f - <<EOF
table inet xdp_tcp_testbed {
  chain forward {
    type filter hook forward priority filter; policy accept;
    numgen random mod 1000 $cond counter drop
  }
}
EOF
    fi
    quiet_sender "$cli_ns" "$cli_if"
    quiet_sender "$rtr_ns" "$rtr_srv_if"
    set_xps "$cli_ns" "$cli_if" "$queues"
    set_xps "$rtr_ns" "$rtr_srv_if" "$queues"
    gw_ip=198.18.2.1
    gw_mac="$(ns_mac "$rtr_ns" "$rtr_srv_if")"
  else
    new_veth "$cli_ns" "$cli_if" "$srv_ns" "$srv_if"
    client_ip=198.18.0.2
    server_ip=198.18.0.1
    ip -n "$cli_ns" addr add "$client_ip/24" dev "$cli_if"
    ip -n "$srv_ns" addr add "$server_ip/24" dev "$srv_if"
    ip -n "$cli_ns" link set dev "$cli_if" up
    ip -n "$srv_ns" link set dev "$srv_if" up
    quiet_sender "$cli_ns" "$cli_if"
    set_xps "$cli_ns" "$cli_if" "$queues"
    gw_ip="$client_ip"
    gw_mac="$(ns_mac "$cli_ns" "$cli_if")"
  fi

  # The client end's and (if asked) the server end's offload levels; the
  # client is a quiet sender unless told otherwise, the server keeps the
  # kernel's defaults (except with --bridge, set above).
  set_offloads "$cli_ns" "$cli_if" "${client_offloads:-off}"
  set_offloads "$srv_ns" "$srv_if" "${server_offloads:-keep}"
  if [ "$bridge" -eq 1 ] && [ "${server_offloads:-keep}" = keep ]; then
    server_offloads=off
  fi
  set_qdisc "$cli_ns" "$cli_if" "$qdisc"
  set_qdisc "$srv_ns" "$srv_if" "$qdisc"

  # Extra client addresses: secondary addresses in the client's /24, so a
  # client can spread connections over several addresses' port spaces.
  local addrs a
  addrs="$(extra_client_addrs "${client_ip%.*}")"
  for a in ${addrs//,/ }; do
    ip -n "$cli_ns" addr add "$a/24" dev "$cli_if"
  done

  {
    echo "prefix=$prefix"
    echo "server_ns=$srv_ns"
    echo "client_ns=$cli_ns"
    if [ "$bridge" -eq 1 ]; then
      echo "mode=bridge"
    elif [ "$router" -eq 1 ]; then
      echo "mode=routed"
    else
      echo "mode=direct"
    fi
    if [ "$router" -eq 1 ] || [ "$bridge" -eq 1 ]; then
      echo "router_ns=$rtr_ns"
      echo "router_client_if=$rtr_cli_if"
      echo "router_server_if=$rtr_srv_if"
    fi
    echo "server_if=$srv_if"
    echo "client_if=$cli_if"
    echo "server_ip=$server_ip"
    echo "client_ip=$client_ip"
    echo "gateway_ip=$gw_ip"
    echo "server_mac=$(ns_mac "$srv_ns" "$srv_if")"
    echo "client_mac=$(ns_mac "$cli_ns" "$cli_if")"
    echo "gateway_mac=$gw_mac"
    echo "queues=$queues"
    echo "mtu=$mtu"
    echo "loss_permille=${loss:-0}"
    echo "client_addrs=$addrs"
    echo "client_offloads=${client_offloads:-off}"
    echo "server_offloads=${server_offloads:-keep}"
    echo "qdisc=$qdisc"
  } >&3
  trap - ERR INT TERM
}

# ---------------------------------------------------------------- offloads

do_offloads() {
  command -v ethtool >/dev/null 2>&1 || die "'ethtool' not found: install it (apt-get install ethtool)"
  ns_exists "$cli_ns" && ns_exists "$srv_ns" ||
    die "no testbed with prefix '$prefix' (start one with: $ME up --prefix $prefix)"
  if [ -n "$client_offloads" ]; then
    set_offloads "$cli_ns" "$cli_if" "$client_offloads"
    echo "client_offloads=$client_offloads"
  fi
  if [ -n "$server_offloads" ]; then
    set_offloads "$srv_ns" "$srv_if" "$server_offloads"
    echo "server_offloads=$server_offloads"
  fi
}

case "$cmd" in
  up) do_up ;;
  down) do_down ;;
  offloads) do_offloads ;;
  status)
    rc=0
    do_status || rc=$?
    exit "$rc"
    ;;
esac
