#!/usr/bin/env bash
# Runs the Python SDK's tests: a venv under target/sdk-venv with the SDK (pip install ./sdk/python)
# and pytest, then pytest against real daemons (see tests/conftest.py). Extra args go to pytest.
#
#   bash sdk/python/tests/run.sh [-k pattern] [-x]
set -euo pipefail
cd "$(dirname "$0")/../../.."

venv=target/sdk-venv
python=${COVE_SDK_PYTHON:-python3}
apt_install() {
  [[ $(id -u) -eq 0 ]] || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; }
}
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  rm -rf "$venv"
  # Debian's python3 needs python3-venv for `-m venv`.
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv || true
    "$python" -m venv "$venv" || { echo "run.sh: $python -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  fi
fi
# debootstrap builds the python test image (that test is skipped without a Debian mirror).
if ! command -v debootstrap >/dev/null; then
  apt_install debootstrap || echo "run.sh: could not install debootstrap; the python image test will fail" >&2
fi
log=$(mktemp)
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check ./sdk/python pytest >"$log" 2>&1; then
  cat "$log" >&2; rm -f "$log"
  echo "run.sh: pip install failed" >&2
  exit 1
fi
rm -f "$log"
# Built in a temp dir by pip: the tests import the installed package, not sdk/python/src.
rm -rf sdk/python/build
cd sdk/python
exec "../../$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
