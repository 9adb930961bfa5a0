#!/usr/bin/env bash
# The demo end to end on a fresh machine: install what is needed, make a
# "host" tree from this machine's zlib and expat, build shims for them with
# capsule.shim(), and run an unchanged program through the shims; then the
# graphics example renders a picture through capsules (examples/graphics/run.sh).
#
# DEMO_GLIBC=trixie|sid runs every program under Debian 13's or unstable's
# glibc instead of the system's (through its own ld.so; scripts/glibc_tree.py
# fetches and unpacks it once into build-glibc/).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${DEMO_DIR:-$repo/build-demo}
# The test suite runs this script after bootstrapping once itself.
[ -n "${CAPSULE_SKIP_BOOTSTRAP:-}" ] || bash "$repo/scripts/bootstrap.sh"
launch=()
if [ -n "${DEMO_GLIBC:-}" ]; then
    version=$(python3 "$repo/scripts/glibc_tree.py" "$DEMO_GLIBC" --print version)
    launch=(python3 "$repo/scripts/glibc_tree.py" "$DEMO_GLIBC" --run)
    echo "== every program runs under glibc $version (DEMO_GLIBC=$DEMO_GLIBC)"
fi

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
"${launch[@]}" "$work/build/where"
echo "== with the shims first on the library path (LD_LIBRARY_PATH=$work/build):"
LD_LIBRARY_PATH=$work/build "${launch[@]}" "$work/build/where"
echo "== what libcapsule did (CAPSULE_DEBUG=path):"
LD_LIBRARY_PATH=$work/build CAPSULE_DEBUG=path "${launch[@]}" "$work/build/where" 2>&1 >/dev/null | head -20

echo
echo "== the graphics example: a picture through the libEGL and libGLESv2 capsules"
GRAPHICS_DIR=$work/graphics CAPSULE_SKIP_BOOTSTRAP=1 bash "$repo/examples/graphics/run.sh"
