#!/usr/bin/env bash
# Runs Cove's benchmark suite (bench/README.md): builds the release binary, then
# bench/bench.py, which writes bench/results.json, bench/report.md and bench/plot.svg.
# Extra arguments go to bench.py (e.g. --runs 10 --pods 50 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman wrk nginx-light >/dev/null
cargo build --release -q -p cove
python3 bench/bench.py "$@"
