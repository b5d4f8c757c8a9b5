#!/usr/bin/env bash
# Builds the test/demo image from Debian's busybox-static as an OCI image layout.
#
#   scripts/build-test-image.sh <out-oci-layout-dir>
#
# Tags: `latest` (entrypoint `httpd -f -p 8000 -h /www`) and `bare` (no entrypoint, no cmd).
# Root filesystem: /bin/busybox and its applet symlinks, /etc/passwd and /etc/group
# (root, nobody), /www/index.html, /www/cgi-bin/slow (a CGI that sleeps
# ${QUERY_STRING:-3} seconds, then answers) and /tmp (1777).
# The result is cached by busybox version: a rerun with the same busybox is instant.
set -euo pipefail

out=${1:?usage: build-test-image.sh <out-oci-layout-dir>}
busybox=/bin/busybox
for tool in umoci; do
  command -v "$tool" >/dev/null || { echo "build-test-image.sh: $tool missing (run scripts/install-deps.sh)" >&2; exit 1; }
done
[[ -x $busybox ]] && $busybox --help >/dev/null 2>&1 || { echo "build-test-image.sh: $busybox missing" >&2; exit 1; }
# Must be the static build: the image has no libc.
if ldd "$busybox" >/dev/null 2>&1; then
  echo "build-test-image.sh: $busybox is dynamically linked; install busybox-static" >&2
  exit 1
fi

version=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || true)
[[ -n $version ]] || version=$(sha256sum "$busybox" | cut -c1-16)
# Bump when the image's content below changes.
recipe=3
stamp="busybox-static $version recipe $recipe"

if [[ -f $out/.cove-test-image && $(cat "$out/.cove-test-image") == "$stamp" && -f $out/index.json ]]; then
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cove-test-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout=$work/layout

umoci init --layout "$layout"
umoci new --image "$layout:latest"
umoci unpack --rootless --image "$layout:latest" "$work/bundle" >/dev/null 2>&1 \
  || umoci unpack --image "$layout:latest" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs

mkdir -p "$rootfs"/{bin,etc,www/cgi-bin,tmp,root,proc,sys,dev}
cp "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"
# Applet symlinks (absolute /bin/busybox targets, created from the host's view of rootfs).
for applet in $("$busybox" --list); do
  [[ $applet == busybox ]] && continue
  [[ -e $rootfs/bin/$applet ]] || ln -s /bin/busybox "$rootfs/bin/$applet"
done
mkdir -p "$rootfs/usr/bin" "$rootfs/sbin" "$rootfs/usr/sbin"
ln -sfn /bin/env "$rootfs/usr/bin/env"
chmod 1777 "$rootfs/tmp"

cat >"$rootfs/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$rootfs/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
nobody:x:65534:
G
echo "Hello from a Cove pod" >"$rootfs/www/index.html"
cat >"$rootfs/www/cgi-bin/slow" <<'C'
#!/bin/sh
# Holds the connection open for ${QUERY_STRING:-3} seconds, then answers.
sleep "${QUERY_STRING:-3}"
printf 'Content-Type: text/plain\r\n\r\n'
echo "slept ${QUERY_STRING:-3}"
C
chmod 0755 "$rootfs/www/cgi-bin/slow"

umoci repack --image "$layout:latest" "$work/bundle" >/dev/null
umoci config --image "$layout:latest" --tag bare \
  --config.workingdir / --config.env PATH=/bin:/sbin:/usr/bin:/usr/sbin \
  --architecture "$(dpkg --print-architecture)" --os linux \
  --author cove --created 2024-01-01T00:00:00Z
umoci config --image "$layout:bare" --tag latest \
  --config.entrypoint httpd --config.entrypoint -f --config.entrypoint -p \
  --config.entrypoint 8000 --config.entrypoint -h --config.entrypoint /www \
  --config.exposedports 8000/tcp
umoci gc --layout "$layout"

echo "$stamp" >"$layout/.cove-test-image"
mkdir -p "$(dirname "$out")"
rm -rf "$out.new.$$"
mv "$layout" "$out.new.$$"
rm -rf "$out"
mv "$out.new.$$" "$out"
