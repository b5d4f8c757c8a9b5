#!/usr/bin/env bash
# Runs every check CI runs (README command 2): installs system packages, builds the test
# image, builds everything, clippy -D warnings, rustfmt --check, then all unit and
# integration tests (the end-to-end ones drive real daemons, registries and runc containers).
# Exits non-zero on any failure; leaves no process, mount, link or temp dir behind.
set -uo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
failures=()

step() { echo; echo "==> $*"; }
run() {
  local name=$1; shift
  step "$name"
  local t0=$SECONDS
  if "$@"; then
    echo "--- $name: ok ($((SECONDS - t0)) s)"
  else
    echo "--- $name: FAILED ($((SECONDS - t0)) s)"
    failures+=("$name")
  fi
}

if [[ $(id -u) -ne 0 ]]; then
  echo "scripts/test.sh: run as root (the tests create network namespaces, mounts and cgroups)" >&2
  exit 1
fi

step "install dependencies"
bash scripts/install-deps.sh || { echo "install-deps.sh failed" >&2; exit 1; }

# Snapshot of host state, to check afterwards that the tests left nothing.
snapshot() {
  {
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(cove|cv)' || true
    awk '{print $2}' /proc/mounts | grep -E '^/tmp/cove-test' || true
    ls -d /tmp/cove-* 2>/dev/null || true
    nft list tables 2>/dev/null | grep -E 'cove_' || true
  } | sort
}
before=$(snapshot)

run "build the test image" bash scripts/build-test-image.sh target/tmp/cove-test-image
run "cargo build" cargo build --workspace --all-targets --locked
run "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked --keep-going -- -D warnings
run "cargo fmt --check" cargo fmt --all --check
# Test binaries run one after another; inside each, tests run in parallel on their own
# daemons, data dirs, ports and subnets.
run "cargo test" cargo test --workspace --locked --no-fail-fast -- --test-threads "${COVE_TEST_THREADS:-2}"
# The Python SDK (sdk/python): pytest in a venv under target/, against a real daemon and registry.
run "python sdk tests" bash sdk/python/tests/run.sh
# Fuzzing (fuzz/, its own workspace, nightly + cargo-fuzz): a short run of every target from its
# seeds (COVE_FUZZ_SECONDS each); `bash fuzz/run.sh 600` hunts longer by hand.
if ! cargo +nightly --version >/dev/null 2>&1; then
  step "fuzz"; echo "--- fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"
elif ! cargo fuzz --version >/dev/null 2>&1 && ! cargo install cargo-fuzz --locked --quiet; then
  step "fuzz"; echo "--- fuzz: skipped: cargo-fuzz is missing and \`cargo install cargo-fuzz\` failed"
else
  run "fuzz (${COVE_FUZZ_SECONDS:-5} s per target)" bash fuzz/run.sh "${COVE_FUZZ_SECONDS:-5}"
fi

step "leftovers"
# Each test binary's registry removes its storage when the binary exits; give it a moment.
for _ in $(seq 1 50); do compgen -G '/tmp/cove-test-registry-*' >/dev/null || break; sleep 0.2; done
after=$(snapshot)
# /tmp/cove-test-subnets is the (empty when idle) lock dir of the harness.
left=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^/tmp/cove-test-subnets$' || true)
if [[ -n $left ]]; then
  echo "the tests left behind:"; echo "$left"
  failures+=("leftovers")
else
  echo "nothing left behind"
fi
rmdir /tmp/cove-test-subnets 2>/dev/null || true

echo
if ((${#failures[@]})); then
  echo "FAILED: ${failures[*]}"
  exit 1
fi
echo "all checks passed"
