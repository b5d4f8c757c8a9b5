#!/usr/bin/env bash
# README command 1: install dependencies, build and install cove, start a local registry with
# the busybox test image, start the daemon, launch the demo pod, print its URL and curl it.
# Safe to rerun: whatever already runs is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

REGISTRY_PORT=${COVE_DEMO_REGISTRY_PORT:-5000}
REGISTRY_DIR=${COVE_DEMO_REGISTRY_DIR:-/var/lib/cove-demo-registry}
IMAGE_DIR=${COVE_DEMO_IMAGE_DIR:-/var/lib/cove-demo-image}
IMAGE=127.0.0.1:$REGISTRY_PORT/busybox
API=${COVE_API_URL:-http://127.0.0.1:7310}
LOG=/var/log/cove.log
PIDFILE=/run/cove.pid

say() { echo "==> $*"; }

say "Installing dependencies"
bash scripts/install-deps.sh

say "Building cove (release)"
cargo build --release --locked -p cove --quiet
install -m 0755 target/release/cove /usr/local/bin/cove.new
mv -f /usr/local/bin/cove.new /usr/local/bin/cove

if curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null; then
  say "A registry already answers on 127.0.0.1:$REGISTRY_PORT"
else
  say "Starting a registry on 127.0.0.1:$REGISTRY_PORT (data in $REGISTRY_DIR)"
  bash scripts/registry.sh start "$REGISTRY_PORT" "$REGISTRY_DIR"
fi

say "Building the busybox test image and pushing $IMAGE:latest and :bare"
bash scripts/build-test-image.sh "$IMAGE_DIR"
bash scripts/registry.sh push "$IMAGE_DIR" "$REGISTRY_PORT" busybox

restart=0
if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null \
   && [[ $(readlink -f "/proc/$(cat "$PIDFILE")/exe" 2>/dev/null) != /usr/local/bin/cove ]]; then
  restart=1 # the binary was replaced: run the new one (pods keep running and are re-adopted)
fi
if ((restart)); then
  say "Restarting the daemon on the new binary"
  kill "$(cat "$PIDFILE")"
  for _ in $(seq 1 100); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
fi
if curl -fsS -o /dev/null --max-time 2 "$API/v1/health" 2>/dev/null; then
  say "The daemon already answers at $API"
else
  say "Starting the daemon (log: $LOG, pid file: $PIDFILE)"
  nohup /usr/local/bin/cove server >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "$API/v1/health" 2>/dev/null && break
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      tail -n 20 "$LOG" >&2
      echo "demo.sh: cove server exited; see $LOG" >&2
      exit 1
    fi
    ((i == 300)) && { tail -n 20 "$LOG" >&2; echo "demo.sh: cove server not ready after 30 s" >&2; exit 1; }
    sleep 0.1
  done
fi

# Rerun: reuse the demo pod if it still runs.
url=$(cove container list --format json | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c.get("name") == "cove-demo" and c["status"] == "RUNNING" and c["urls"]:
        print(c["urls"][0]["url"]); break
')
if [[ -n $url ]]; then
  say "The demo pod already runs"
  echo "✨ Container hosted at: $url"
else
  say "Launching the demo pod"
  out=$(mktemp)
  cove run --image "$IMAGE:latest" --ports 8000 --env GREETING=hi --cpu 0.5 --memory 128 \
    --keep-warm-seconds -1 --entrypoint "httpd -f -p 8000 -h /www" --name cove-demo | tee "$out"
  url=$(grep -o 'http://[^ ]*' "$out" | tail -n 1)
  rm -f "$out"
fi

echo
say "curl $url/"
for i in $(seq 1 100); do
  if curl -fsS --max-time 10 "$url/"; then break; fi
  ((i == 100)) && { echo "demo.sh: the pod did not answer at $url" >&2; exit 1; }
  sleep 0.2
done
echo
say "The demo pod runs at $url (cove container list; cove container stop <id>)"
