#!/usr/bin/env bash
# Runs Cove's benchmark: builds the release binary, then bench/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
apt-get install -y -qq podman >/dev/null
cargo build --release -q -p cove
python3 bench/bench.py "$@"
