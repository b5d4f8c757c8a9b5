#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) minbase image with python3, as an OCI image layout, for the
# SDK tests that run the guide's `python3 -m http.server` pods.
#
#   sdk/python/tests/images/build-python-image.sh <out-oci-layout-dir>
#
# <out>           tag `latest` (the layout's only image): python3 (also as `python`), PATH set,
#                 working dir /, no entrypoint.
# <out>-notebook  tag `notebook`: latest plus /usr/local/bin/start-notebook.py (entrypoint, port
#                 8888), a stand-in for jupyter/base-notebook so the guide's notebook snippets run
#                 unchanged but for the image name; it serves a page showing $NOTEBOOK_ARGS.
# Made with `debootstrap --variant=minbase --include=python3` (about a minute) and umoci.
# Cached by a content key (this script, the architecture, the mirror): a rerun is instant.
# Exit status 75 when the Debian mirror cannot be reached (callers skip), 1 on other failures.
set -euo pipefail

out=${1:?usage: build-python-image.sh <out-oci-layout-dir>}
mirror=${COVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
arch=$(dpkg --print-architecture)

for tool in debootstrap umoci curl; do
  command -v "$tool" >/dev/null || { echo "build-python-image.sh: $tool missing (apt-get install debootstrap umoci curl)" >&2; exit 1; }
done

key=$( { cat "$0"; echo "$arch $suite $mirror"; } | sha256sum | cut -c1-16)
stamp="python-image $key"
if [[ -f $out/.cove-python-image && $(cat "$out/.cove-python-image") == "$stamp" && -f $out/index.json \
   && -f $out-notebook/.cove-python-image && $(cat "$out-notebook/.cove-python-image") == "$stamp" ]]; then
  exit 0
fi

if ! curl -fsS -o /dev/null --max-time 20 "$mirror/dists/$suite/Release"; then
  echo "build-python-image.sh: the Debian mirror $mirror is unreachable" >&2
  exit 75
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cove-python-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
layout=$work/layout

if ! debootstrap --variant=minbase --include=python3 "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  if grep -qiE 'Failed getting release file|Couldn.t download|Temporary failure|Could not resolve|Connection (refused|timed out)' "$work/debootstrap.log"; then
    echo "build-python-image.sh: debootstrap could not reach $mirror" >&2
    exit 75
  fi
  echo "build-python-image.sh: debootstrap failed" >&2
  exit 1
fi
# Slim it, and drop what an image layer must not carry (device nodes, mounts' contents).
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
       "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/* "$root"/debootstrap
find "$root/dev" -mindepth 1 -delete 2>/dev/null || true
rm -rf "${root:?}"/proc/* "${root:?}"/sys/* "${root:?}"/run/*
# `python` too (Debian's python-is-python3): the guide's entrypoints say `python -m http.server`.
ln -sfn python3 "$root/usr/bin/python"
mkdir -p "$root/www"
echo "Hello from a Cove python pod" >"$root/www/index.html"

umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --image "$layout:latest" "$work/bundle" >/dev/null
cp -a "$root/." "$work/bundle/rootfs/"
umoci repack --refresh-bundle --image "$layout:latest" "$work/bundle" >/dev/null
umoci config --image "$layout:latest" --tag latest \
  --config.workingdir / --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env LANG=C.UTF-8 \
  --architecture "$arch" --os linux --author cove --created 2024-01-01T00:00:00Z

# The notebook stand-in: one more layer, in a layout of its own (an importer of <out> by
# reference wants one image per layout).
cp -a "$layout" "$work/notebook"
mkdir -p "$work/bundle/rootfs/usr/local/bin" "$work/bundle/rootfs/srv/notebook"
cat >"$work/bundle/rootfs/usr/local/bin/start-notebook.py" <<'PY'
#!/usr/bin/env python3
"""A stand-in for jupyter's start-notebook.py: serves a page naming $NOTEBOOK_ARGS on :8888."""
import http.server
import os

args = os.environ.get("NOTEBOOK_ARGS", "")
print(f"start-notebook.py: NOTEBOOK_ARGS={args}", flush=True)
os.chdir("/srv/notebook")
with open("index.html", "w") as f:
    f.write(f"<title>Notebook</title>NOTEBOOK_ARGS={args}\n")
http.server.ThreadingHTTPServer(("", 8888), http.server.SimpleHTTPRequestHandler).serve_forever()
PY
chmod 0755 "$work/bundle/rootfs/usr/local/bin/start-notebook.py"
umoci repack --image "$work/notebook:notebook" "$work/bundle" >/dev/null
umoci config --image "$work/notebook:notebook" --tag notebook \
  --config.workingdir / --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env LANG=C.UTF-8 --config.entrypoint start-notebook.py --config.exposedports 8888/tcp \
  --architecture "$arch" --os linux --author cove --created 2024-01-01T00:00:00Z
umoci rm --image "$work/notebook:latest"
umoci gc --layout "$work/notebook"
umoci gc --layout "$layout"

mkdir -p "$(dirname "$out")"
for pair in "$layout:$out" "$work/notebook:$out-notebook"; do
  src=${pair%%:*} dst=${pair#*:}
  echo "$stamp" >"$src/.cove-python-image"
  rm -rf "$dst.new.$$"
  mv "$src" "$dst.new.$$"
  rm -rf "$dst"
  mv "$dst.new.$$" "$dst"
done
