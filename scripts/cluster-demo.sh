#!/usr/bin/env bash
# Many Cove hosts on one machine: each host a `cove server` in its own network namespace, the
# hosts joined by a bridge, and a real 3-member etcd cluster. As root.
#
#   scripts/cluster-demo.sh up [N]   # N hosts (default 3, at most 26): prints one line per host, then etcd's
#   scripts/cluster-demo.sh status   # the same lines again, for a cluster that is up
#   scripts/cluster-demo.sh down     # removes everything `up` made and checks that nothing is left
#
# Output of `up` and `status`:
#   node host-a api=http://10.210.0.11:7310 gateway=http://10.210.0.11:8080 netns=cc-host-a pid=1234 token=FILE
#   etcd endpoints=http://10.210.0.1:2379,http://10.210.0.1:2381,http://10.210.0.1:2383
#
# Layout. The bridge `<prefix>-br` holds <net>.1 in the root namespace, so every URL answers from
# there. Host i (host-a, host-b, ...) is the namespace `<prefix>-host-x`, whose `eth0` (a veth into
# the bridge; the root end is named `<prefix>-host-x`) has <net>.(10+i)/24 and no default route:
# the hosts reach each other, the root namespace and etcd, and nothing beyond the bridge. Each host
# runs `cove server` with its own data dir, pod subnet (a /24), API and gateway on its address and
# the cluster's admin token (written to every host's `<data-dir>/token` before it starts: FILE).
# etcd's members listen on <net>.1 (not on loopback: a namespace's 127.0.0.1 is its own), so the
# hosts reach them through their veth, and cutting a host's link cuts it off etcd too. The daemon
# runs under `nsenter --net`: only the network namespace changes, so its mounts, cgroups and
# processes are the root namespace's, where `down` and the tests look for leftovers. A pod's
# egress leaves through its host's veth, NATed to the host's address.
#
# Until `cove server` has `--etcd`, each host runs standalone; once `cove server --help` lists it,
# every host gets `--etcd <endpoints> --node <name> --node-address <address>`.
#
# Settings (environment; tests pass their own so clusters run side by side):
#   COVE_CLUSTER_DIR        state: data dirs, logs, pid files, etcd data (default /var/lib/cove-cluster)
#   COVE_CLUSTER_PREFIX     names of namespaces and links, 1-8 of [a-z0-9] (default cc)
#   COVE_CLUSTER_NET        the bridge's /24 as a.b.c (default 10.210.0)
#   COVE_CLUSTER_POD_NETS   the hosts' pod /24s, space-separated a.b.c (default the N /24s after the bridge's)
#   COVE_CLUSTER_ETCD_PORT  etcd member k serves clients on PORT+2(k-1), peers on the next port (default 2379)
#   COVE_CLUSTER_API_PORT, COVE_CLUSTER_GATEWAY_PORT   on each host's address (default 7310, 8080)
#   COVE_CLUSTER_SERVER_ARGS  more `cove server` arguments, space-separated (e.g. --stop-grace-seconds 2)
#   COVE_BIN                the cove binary (default /usr/local/bin/cove, built and installed if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "cluster-demo.sh: $*" >&2; exit 1; }

DIR=${COVE_CLUSTER_DIR:-/var/lib/cove-cluster}
STATE_FILE=cluster.env

# ------------------------------------------------------------------ settings

# Reads and checks the settings for `up`; writes nothing.
settings_from_env() {
  N=${1:-3}
  [[ $N =~ ^[0-9]+$ ]] && ((N >= 1 && N <= 26)) || die "the host count must be 1-26, not \"$N\""
  PREFIX=${COVE_CLUSTER_PREFIX:-cc}
  [[ $PREFIX =~ ^[a-z0-9]{1,8}$ ]] || die "COVE_CLUSTER_PREFIX \"$PREFIX\" must be 1-8 of [a-z0-9]"
  NET=${COVE_CLUSTER_NET:-10.210.0}
  check_net COVE_CLUSTER_NET "$NET"
  if [[ -n ${COVE_CLUSTER_POD_NETS:-} ]]; then
    read -r -a POD_NETS <<<"$COVE_CLUSTER_POD_NETS"
  else
    POD_NETS=()
    local base=${NET%.*} c=${NET##*.} i
    for ((i = 1; i <= N; i++)); do
      ((c + i <= 255)) || die "no room for $N pod /24s after $NET.0/24: set COVE_CLUSTER_POD_NETS"
      POD_NETS+=("$base.$((c + i))")
    done
  fi
  ((${#POD_NETS[@]} == N)) || die "COVE_CLUSTER_POD_NETS names ${#POD_NETS[@]} /24s for $N hosts"
  local p
  for p in "${POD_NETS[@]}"; do
    check_net COVE_CLUSTER_POD_NETS "$p"
    [[ $p != "$NET" ]] || die "the pod /24 $p.0/24 is the bridge's"
  done
  [[ $(printf '%s\n' "${POD_NETS[@]}" | sort -u | wc -l) == "$N" ]] || die "COVE_CLUSTER_POD_NETS repeats a /24"
  ETCD_PORT=$(check_port COVE_CLUSTER_ETCD_PORT "${COVE_CLUSTER_ETCD_PORT:-2379}")
  ((ETCD_PORT + 5 <= 65535)) || die "COVE_CLUSTER_ETCD_PORT $ETCD_PORT leaves no room for 6 ports"
  API_PORT=$(check_port COVE_CLUSTER_API_PORT "${COVE_CLUSTER_API_PORT:-7310}")
  GW_PORT=$(check_port COVE_CLUSTER_GATEWAY_PORT "${COVE_CLUSTER_GATEWAY_PORT:-8080}")
  [[ $API_PORT != "$GW_PORT" ]] || die "the API and gateway ports are both $API_PORT"
  SERVER_ARGS=${COVE_CLUSTER_SERVER_ARGS:-}
  COVE=${COVE_BIN:-/usr/local/bin/cove}
}

check_net() {
  local name=$1 v=$2 o
  [[ $v =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "$name: \"$v\" is not a /24 written a.b.c"
  for o in "${BASH_REMATCH[@]:1}"; do ((10#$o <= 255)) || die "$name: \"$v\" is not a /24 written a.b.c"; done
}

check_port() {
  [[ $2 =~ ^[0-9]{1,5}$ ]] && ((10#$2 >= 1 && 10#$2 <= 65535)) || die "$1: \"$2\" is not a port"
  echo $((10#$2))
}

# The state file records the settings, so `down` and `status` need no environment.
# `declare -g`: sourced inside a function, a plain `declare` would make them local to it.
save_settings() {
  declare -p N PREFIX NET POD_NETS ETCD_PORT API_PORT GW_PORT SERVER_ARGS COVE \
    | sed 's/^declare /declare -g /' >"$DIR/$STATE_FILE"
}

load_settings() {
  # shellcheck disable=SC1090
  source "$DIR/$STATE_FILE"
}

# ------------------------------------------------------------------ names

node_name() { printf 'host-%b' "\\x$(printf %x $((96 + $1)))"; }   # 1 -> host-a
host_ns() { echo "$PREFIX-$(node_name "$1")"; }
host_addr() { echo "$NET.$((10 + $1))"; }
host_data() { echo "$DIR/hosts/$(node_name "$1")/data"; }
bridge() { echo "$PREFIX-br"; }
etcd_client_url() { echo "http://$NET.1:$((ETCD_PORT + 2 * ($1 - 1)))"; }
etcd_peer_url() { echo "http://$NET.1:$((ETCD_PORT + 2 * ($1 - 1) + 1))"; }
etcd_endpoints() { echo "$(etcd_client_url 1),$(etcd_client_url 2),$(etcd_client_url 3)"; }

# FNV-1a 64 of $1, low 32 bits as 8 hex digits: what the daemon names its cgroup parent
# (`cove-<hash of the data dir>`) and its nftables table (`cove_<hash of the pod subnet>`) after.
fnv32() {
  local s=$1 h=$((0xcbf29ce484222325)) i c
  for ((i = 0; i < ${#s}; i++)); do
    printf -v c %d "'${s:i:1}"
    h=$(((h ^ c) * 0x100000001b3))
  done
  printf %08x $((h & 0xffffffff))
}

# A live process whose command line contains $2.
pid_alive_with() {
  local pid=$1 want=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$want"
}

# ------------------------------------------------------------------ up

need_tools() {
  local t missing=()
  for t in ip nsenter etcd etcdctl curl runc nft losetup python3; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}: run bash scripts/install-deps.sh"
}

ensure_binary() {
  [[ -x $COVE ]] && return 0
  [[ -z ${COVE_BIN:-} ]] || die "COVE_BIN $COVE is not an executable file"
  echo "==> Building cove (release) into $COVE" >&2
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v cargo >/dev/null 2>&1 || die "cove is not installed and cargo is missing: run bash scripts/install-deps.sh"
  cargo build --release --locked -p cove --quiet
  install -m 0755 target/release/cove "$COVE.new"
  mv -f "$COVE.new" "$COVE"
}

# Before anything is made (a failed `up` removes what carries the cluster's names): none of the
# cluster's names or networks may be taken already.
preflight() {
  local i ns
  ! ip link show "$(bridge)" >/dev/null 2>&1 || die "a link named $(bridge) already exists"
  if ip -4 route show | grep -q "^$NET\.0/24 "; then die "$NET.0/24 is already routed on this host"; fi
  for ((i = 1; i <= N; i++)); do
    ns=$(host_ns "$i")
    ! ip netns list | grep -q "^$ns\( \|$\)" || die "a network namespace named $ns already exists"
    ! ip link show "$ns" >/dev/null 2>&1 || die "a link named $ns already exists"
  done
}

make_bridge() {
  local br; br=$(bridge)
  ip link add "$br" type bridge
  ip addr add "$NET.1/24" dev "$br"
  ip link set "$br" up
}

make_host() {
  local i=$1 ns veth addr
  ns=$(host_ns "$i"); veth=$ns; addr=$(host_addr "$i")
  ip netns add "$ns"
  ip link add "$veth" type veth peer name "$PREFIX-p$i" netns "$ns"
  ip link set "$veth" master "$(bridge)" up
  ip -n "$ns" link set "$PREFIX-p$i" name eth0
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

start_etcd() {
  local k cluster="" dir
  for k in 1 2 3; do cluster+="${cluster:+,}etcd$k=$(etcd_peer_url "$k")"; done
  for k in 1 2 3; do
    dir=$DIR/etcd/etcd$k
    mkdir -p "$dir"
    nohup etcd --name "etcd$k" --data-dir "$dir/data" \
      --listen-client-urls "$(etcd_client_url "$k")" --advertise-client-urls "$(etcd_client_url "$k")" \
      --listen-peer-urls "$(etcd_peer_url "$k")" --initial-advertise-peer-urls "$(etcd_peer_url "$k")" \
      --initial-cluster "$cluster" --initial-cluster-token "$PREFIX-$NET" --initial-cluster-state new \
      --logger zap --log-outputs stderr --log-level warn \
      >"$dir/etcd.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  done
  local end=$((SECONDS + 60))
  while ((SECONDS < end)); do
    etcdctl --endpoints "$(etcd_endpoints)" --dial-timeout 1s --command-timeout 2s endpoint health \
      >/dev/null 2>&1 && return 0
    for k in 1 2 3; do
      kill -0 "$(cat "$DIR/etcd/etcd$k/pid")" 2>/dev/null \
        || { tail -n 20 "$DIR/etcd/etcd$k/etcd.log" >&2; die "etcd member etcd$k exited"; }
    done
    sleep 0.2
  done
  die "the etcd cluster was not healthy after 60 s (logs in $DIR/etcd)"
}

start_host() {
  local i=$1 name ns addr data dir args
  name=$(node_name "$i"); ns=$(host_ns "$i"); addr=$(host_addr "$i"); data=$(host_data "$i")
  dir=$DIR/hosts/$name
  mkdir -p "$data"
  install -m 0600 "$DIR/token" "$data/token"
  read -r -a args <<<"$SERVER_ARGS"
  if "$COVE" server --help 2>/dev/null | grep -q -- '--etcd'; then
    args+=(--etcd "$(etcd_endpoints)" --node "$name" --node-address "$addr")
  fi
  # nsenter --net changes only the network namespace (see the header); it execs the daemon, so $! is its pid.
  COVE_LOG=${COVE_LOG:-info} NO_COLOR=1 nohup nsenter --net="/run/netns/$ns" -- "$COVE" server \
    --data-dir "$data" --api-listen "$addr:$API_PORT" --gateway-listen "$addr:$GW_PORT" \
    --subnet "${POD_NETS[$((i - 1))]}.0/24" "${args[@]}" >"$dir/daemon.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

wait_host() {
  local i=$1 name addr dir end=$((SECONDS + 60))
  name=$(node_name "$i"); addr=$(host_addr "$i"); dir=$DIR/hosts/$name
  while ((SECONDS < end)); do
    curl -fsS -o /dev/null --max-time 1 "http://$addr:$API_PORT/v1/health" 2>/dev/null && return 0
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { tail -n 20 "$dir/daemon.log" >&2; die "cove server on $name exited"; }
    sleep 0.1
  done
  tail -n 20 "$dir/daemon.log" >&2
  die "cove server on $name did not answer after 60 s"
}

print_lines() {
  local i name addr
  for ((i = 1; i <= N; i++)); do
    name=$(node_name "$i"); addr=$(host_addr "$i")
    echo "node $name api=http://$addr:$API_PORT gateway=http://$addr:$GW_PORT netns=$(host_ns "$i")" \
      "pid=$(cat "$DIR/hosts/$name/pid") token=$DIR/token"
  done
  echo "etcd endpoints=$(etcd_endpoints)"
}

up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it makes namespaces, links and mounts)"
  [[ ! -e $DIR/$STATE_FILE ]] || die "a cluster is already up in $DIR: run $0 down first"
  settings_from_env "$@"
  need_tools
  ensure_binary
  preflight
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  save_settings
  # From here on a failure (a `die`, a failed command) removes whatever was made.
  UP_DONE=0
  trap up_exit EXIT
  make_bridge
  local i
  for ((i = 1; i <= N; i++)); do make_host "$i"; done
  start_etcd
  (umask 077; printf 'cove_%s' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" >"$DIR/token")
  for ((i = 1; i <= N; i++)); do start_host "$i"; done
  for ((i = 1; i <= N; i++)); do wait_host "$i"; done
  UP_DONE=1
  print_lines
}

up_exit() {
  local rc=$?
  if ((rc != 0 && UP_DONE == 0)); then
    echo "cluster-demo.sh: up failed; removing what it made" >&2
    down >&2 || true
  fi
  exit "$rc"
}

source "$(dirname "$0")/cluster-down.sh"

case ${1:-} in
  up) shift; up "$@" ;;
  down)
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    if [[ ! -f $DIR/$STATE_FILE ]]; then echo "cluster-demo.sh: no cluster in $DIR"; exit 0; fi
    DIR=$(cd "$DIR" && pwd)
    load_settings
    down
    ;;
  status)
    [[ -f $DIR/$STATE_FILE ]] || die "no cluster in $DIR"
    load_settings
    print_lines
    ;;
  *) die "usage: cluster-demo.sh up [N] | status | down" ;;
esac
