#!/usr/bin/env bash
# The demo end to end on a fresh machine: install what is needed, make a
# "host" tree from this machine's zlib and expat, build shims for them with
# capsule.shim(), and run an unchanged program through the shims; then the
# graphics example renders a picture through capsules (examples/graphics/run.sh).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${DEMO_DIR:-$repo/build-demo}
# The test suite runs this script after bootstrapping once itself.
[ -n "${CAPSULE_SKIP_BOOTSTRAP:-}" ] || bash "$repo/scripts/bootstrap.sh"

host=$work/host
libdir=$host/usr/lib/x86_64-linux-gnu
rm -rf "$work" && mkdir -p "$libdir" "$host/etc"
for lib in libz.so.1 libexpat.so.1; do
    real=$(readlink -f "/usr/lib/x86_64-linux-gnu/$lib")
    cp -l "$real" "$libdir/" 2>/dev/null || cp "$real" "$libdir/"
    ln -sf "$(basename "$real")" "$libdir/$lib"
done
echo /usr/lib/x86_64-linux-gnu > "$host/etc/ld.so.conf"
ldconfig -r "$host"

"$repo/.venv/bin/meson" setup --reconfigure "$work/build" "$repo/examples/demo" -Dhost="$host" >/dev/null
"$repo/.venv/bin/meson" compile -C "$work/build" >/dev/null

echo "== without capsule:"
"$work/build/where"
echo "== with the shims first on the library path (LD_LIBRARY_PATH=$work/build):"
LD_LIBRARY_PATH=$work/build "$work/build/where"
echo "== what libcapsule did (CAPSULE_DEBUG=path):"
LD_LIBRARY_PATH=$work/build CAPSULE_DEBUG=path "$work/build/where" 2>&1 >/dev/null | head -20

echo
echo "== the graphics example: a picture through the libEGL and libGLESv2 capsules"
GRAPHICS_DIR=$work/graphics CAPSULE_SKIP_BOOTSTRAP=1 bash "$repo/examples/graphics/run.sh"
