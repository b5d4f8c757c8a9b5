# `scripts/cluster-demo.sh down`: removes what `up` made and checks that nothing is left.
# Sourced by cluster-demo.sh (it sets DIR and the settings, and defines the naming functions).
#
# Order: each daemon stops its own pods through its API and exits on SIGTERM (with no pod left it
# removes its bridge, firewall table and cgroup parent itself); then etcd; then whatever a daemon
# that was already dead left is removed by force (shims, runc/runsc containers, mounts, loop
# devices, cgroups); then the namespaces (with them the hosts' veths, pod bridges and nftables
# tables), the root ends of the veths and the bridge. Last, everything is looked for again.

# SIGTERM, then SIGKILL after $2 seconds, of pid $1 if it still runs $3.
stop_pid() {
  local pid=$1 grace=$2 want=$3 t
  pid_alive_with "$pid" "$want" || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((t = 0; t < grace * 10; t++)); do
    pid_alive_with "$pid" "$want" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  for ((t = 0; t < 50; t++)); do pid_alive_with "$pid" "$want" || return 0; sleep 0.1; done
}

# `cove` against host $1's API.
host_cli() {
  local i=$1; shift
  COVE_API_URL="http://$(host_addr "$i"):$API_PORT" COVE_TOKEN="$(cat "$DIR/token" 2>/dev/null)" \
    timeout 60 "$COVE" "$@" </dev/null
}

live_ids() {
  host_cli "$1" container list --format json 2>/dev/null \
    | python3 -c 'import json,sys; [print(c["id"]) for c in json.load(sys.stdin)]' 2>/dev/null
}

# Stops host $1's pods through its API, then the daemon.
stop_host() {
  local i=$1 data pid id t
  data=$(host_data "$i")
  pid=$(cat "$DIR/hosts/$(node_name "$i")/pid" 2>/dev/null) || return 0
  pid_alive_with "$pid" "$data" || return 0
  local stops=()
  for id in $(live_ids "$i"); do
    host_cli "$i" container stop "$id" >/dev/null 2>&1 &
    stops+=($!)
  done
  ((${#stops[@]} == 0)) || wait "${stops[@]}"
  for ((t = 0; t < 300; t++)); do
    [[ -z $(live_ids "$i") ]] && break
    sleep 0.1
  done
  stop_pid "$pid" 30 "$data"
}

# What a dead daemon of host $1 left behind, removed by force.
force_clean_host() {
  local data pid root m dev cg
  data=$(host_data "$1")
  [[ -d $data ]] || return 0
  # Shims (`cove shim <id> <data>/containers/<id> ...`) lead their own process group.
  for pid in $(procs_with "$data/containers/"); do kill -KILL -- "-$pid" "$pid" 2>/dev/null; done
  for root in runc runsc; do
    [[ -d $data/$root ]] || continue
    for id in $($root --root "$data/$root" list -q 2>/dev/null); do
      $root --root "$data/$root" delete -f "$id" >/dev/null 2>&1
    done
  done
  for pid in $(procs_with "--root=$data/runsc"); do kill -KILL "$pid" 2>/dev/null; done
  for m in $(mounts_under "$data"); do umount -l "$m" 2>/dev/null; done
  for dev in $(loops_under "$data"); do losetup -d "$dev" 2>/dev/null; done
  for cg in $(cgroup_dirs "$data"); do
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
}

# Pids of processes whose command line contains $1 (not this shell's).
procs_with() {
  local p
  for p in /proc/[0-9]*; do
    [[ ${p#/proc/} == "$$" ]] && continue
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && echo "${p#/proc/}"
  done
}

# Mount points under $1, deepest first.
mounts_under() {
  awk -v d="$1/" 'index($5, d) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2
}

loops_under() {
  losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v d="$1/" 'index($2, d) == 1 { print $1 }'
}

# The cgroup parent (`cove-<hash of the data dir>`) of data dir $1, in every hierarchy.
cgroup_dirs() {
  local parent d
  parent=cove-$(fnv32 "$1")
  for d in /sys/fs/cgroup/"$parent" /sys/fs/cgroup/*/"$parent"; do [[ -d $d ]] && echo "$d"; done
}

# Everything of this cluster still on the machine, one line each.
leftovers() {
  local i k pid data ns l
  for ((i = 1; i <= N; i++)); do
    data=$(host_data "$i"); ns=$(host_ns "$i")
    pid=$(cat "$DIR/hosts/$(node_name "$i")/pid" 2>/dev/null)
    pid_alive_with "$pid" "$data" && echo "daemon of $(node_name "$i") still runs: pid $pid"
    ip netns list 2>/dev/null | grep -q "^$ns\( \|$\)" && echo "network namespace $ns"
    for l in $(cgroup_dirs "$data"); do echo "cgroup $l"; done
    nft list tables 2>/dev/null | grep -qw "cove_$(fnv32 "${POD_NETS[$((i - 1))]}.0/24")" \
      && echo "nftables table of $(node_name "$i") in the root namespace"
  done
  for k in 1 2 3; do
    pid=$(cat "$DIR/etcd/etcd$k/pid" 2>/dev/null)
    pid_alive_with "$pid" "$DIR/etcd/etcd$k" && echo "etcd member etcd$k still runs: pid $pid"
  done
  for pid in $(procs_with "$DIR/"); do
    echo "process $pid: $(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | cut -c1-120)"
  done
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
    [[ $l == "$PREFIX"-* ]] && echo "link $l"
  done
  ip -4 route show 2>/dev/null | grep -q "^$NET\.0/24 " && echo "route to $NET.0/24"
  for l in $(mounts_under "$DIR"); do echo "mount $l"; done
  for l in $(loops_under "$DIR"); do echo "loop device $l"; done
}

down() {
  local - i k ns left hosts=()
  set +e
  # Only these jobs are waited for: when a failed `up` calls this, the daemons are its jobs too.
  for ((i = 1; i <= N; i++)); do
    stop_host "$i" &
    hosts+=($!)
  done
  wait "${hosts[@]}"
  for k in 1 2 3; do stop_pid "$(cat "$DIR/etcd/etcd$k/pid" 2>/dev/null)" 10 "$DIR/etcd/etcd$k"; done
  for ((i = 1; i <= N; i++)); do
    force_clean_host "$i"
    ns=$(host_ns "$i")
    ip netns list 2>/dev/null | grep -q "^$ns\( \|$\)" && ip netns delete "$ns"
    ip link del "$ns" 2>/dev/null
  done
  ip link del "$(bridge)" 2>/dev/null
  left=$(leftovers)
  if [[ -n $left ]]; then
    echo "cluster-demo.sh: down left behind (state kept in $DIR):" >&2
    sed 's/^/  /' <<<"$left" >&2
    return 1
  fi
  rm -rf "$DIR"
  echo "cluster-demo.sh: down: the cluster in $DIR is gone, nothing left"
}
