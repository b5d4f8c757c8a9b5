#!/usr/bin/env bash
# A local OCI distribution registry (Debian's docker-registry) for the demo and tests.
#
#   scripts/registry.sh start <port> <dir>   # serve <dir>/data on 127.0.0.1:<port>; pid in <dir>/registry.pid
#   scripts/registry.sh stop <dir>           # stop the registry started on <dir>
#   scripts/registry.sh push <oci-layout-dir> <port> [repo]   # push tags latest and bare as 127.0.0.1:<port>/<repo>
#
# `start` returns once the registry answers /v2/, and is a no-op if one started on <dir> still runs.
set -euo pipefail

die() { echo "registry.sh: $*" >&2; exit 1; }

answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/v2/" 2>/dev/null; }

start() {
  local port=${1:?port} dir=${2:?dir}
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/registry.pid ]] && kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null && answers "$port"; then
    return 0
  fi
  cat >"$dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CFG
  nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/registry.pid"
  for _ in $(seq 1 100); do
    answers "$port" && return 0
    kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null || { cat "$dir/registry.log" >&2; die "docker-registry exited"; }
    sleep 0.1
  done
  cat "$dir/registry.log" >&2
  die "docker-registry did not answer on 127.0.0.1:$port"
}

stop() {
  local dir=${1:?dir} pid
  [[ -f $dir/registry.pid ]] || return 0
  pid=$(cat "$dir/registry.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/registry.pid"
}

push() {
  local layout=${1:?oci layout dir} port=${2:?port} repo=${3:-busybox} tag
  for tag in latest bare; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$tag" "docker://127.0.0.1:$port/$repo:$tag" >/dev/null
  done
}

case ${1:-} in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  push) shift; push "$@" ;;
  *) die "usage: registry.sh start <port> <dir> | stop <dir> | push <oci-layout-dir> <port> [repo]" ;;
esac
