#!/usr/bin/env bash
# Installs everything Cove, its demo and its tests need on Debian 12, as root.
# Idempotent and quiet: prints only when it installs something or fails.
set -euo pipefail

PACKAGES=(
  runc runsc busybox-static docker-registry skopeo umoci
  iproute2 nftables iptables kmod procps util-linux
  curl ca-certificates build-essential pkg-config python3 python3-venv git
  e2fsprogs tar sqlite3
  # building cove-store: the etcd-client crate compiles etcd's .proto files (protoc and its
  # google/protobuf/*.proto includes)
  protobuf-compiler
  libprotobuf-dev
  # the cluster's state store: the etcd tests and scripts/cluster-demo.sh run a real 3-member
  # etcd cluster
  etcd-server
  # etcdctl, for the cluster tests' health checks and looking into a cluster by hand
  etcd-client
  # only the tests use these: the Python test image, the registry-auth test's htpasswd file
  debootstrap apache2-utils
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: must run as root (it uses apt-get)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-deps.sh: apt-get failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

# The Debian package starts a registry on :5000 under systemd where systemd runs;
# the scripts start their own, so a packaged one is left alone. The same holds for etcd-server's
# packaged etcd on 127.0.0.1:2379: tests and scripts/cluster-demo.sh start their own members.

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps.sh: installing Rust with rustup"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy -c rustfmt >/dev/null
fi
# clippy and rustfmt are needed by scripts/test.sh.
if command -v rustup >/dev/null 2>&1 || [[ -x "$HOME/.cargo/bin/rustup" ]]; then
  PATH="$HOME/.cargo/bin:$PATH"
  for c in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      rustup component add "$c" >/dev/null 2>&1 || echo "install-deps.sh: could not add rustup component $c" >&2
    fi
  done
fi
