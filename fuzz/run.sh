#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 20), starting from the seeds in
# fuzz/seeds/<target> plus the corpus earlier runs grew in fuzz/corpus/<target> (not in git).
#
#   bash fuzz/run.sh [SECONDS]     # e.g. `bash fuzz/run.sh 600` for a longer hunt
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`) and GNU tar (for
# unpack_differential); run as root (the unpack targets create files owned by the layer's uids).
# A crash stops with the failing input in fuzz/artifacts/<target>/; replay it with
# `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-20}
targets=(unpack_layer unpack_differential image_reference gateway_host quantity)
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is missing: install it with \`cargo install cargo-fuzz\`" >&2
  exit 2
fi

cargo +nightly fuzz build -O || { echo "fuzz/run.sh: building the fuzz targets failed" >&2; exit 1; }
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "==> fuzz $t (${secs}s)"
  # -max_len 1 MiB: room for multi-entry tars; -rss_limit: a runaway allocation is a finding.
  if ! cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 -print_final_stats=1 \
      2>"target/$t.log"; then
    echo "fuzz $t: FAILED; the last lines of target/$t.log:" >&2
    tail -n 40 "target/$t.log" | cat -v >&2
    status=1
  else
    grep -aE '^stat::number_of_executed_units|^Done' "target/$t.log" || true
  fi
done
rm -rf target/scratch
exit $status
