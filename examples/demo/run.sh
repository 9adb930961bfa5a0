#!/usr/bin/env bash
# The demo end to end on a fresh machine: install what is needed, make a
# "host" tree from this machine's zlib and expat, build shims for them with
# capsule.shim(), and run an unchanged program through the shims; then the
# same for a 32-bit build of the program (i386: built with
# cross/i386-linux-gnu.ini, zlib and expat from Debian's i386 packages,
# unpacked by scripts/arch_tree.py, nothing installed); then the graphics
# example renders a picture through capsules (examples/graphics/run.sh).
# The 32-bit part says why it is skipped when it cannot run (no i386
# runtime in this capsule yet, no gcc -m32, the packages cannot be fetched).
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

i386_part() {
    local tree host32="$work/host-i386" build32="$work/build-i386"
    # Debian's i386 zlib and expat with their -dev files, unpacked (kept in
    # build-arch/ and reused), and a machine file that builds against them.
    if ! tree=$("$repo/.venv/bin/python" "$repo/scripts/arch_tree.py" i386 zlib1g libexpat1 \
            zlib1g-dev libexpat1-dev --machine-file "$work/i386-tree.ini" 2>"$work/arch_tree.err")
    then
        echo "== the 32-bit part skipped: no i386 host tree: $(tail -n 1 "$work/arch_tree.err")"
        return
    fi
    # The host tree: the real libraries, as for the 64-bit part.
    mkdir -p "$host32/usr/lib/i386-linux-gnu" "$host32/etc"
    for lib in libz.so.1 libexpat.so.1; do
        real=/nonexistent
        for dir in "$tree/lib/i386-linux-gnu" "$tree/usr/lib/i386-linux-gnu"; do
            [ -e "$dir/$lib" ] && real=$(readlink -f "$dir/$lib") && break
        done
        cp -l "$real" "$host32/usr/lib/i386-linux-gnu/" 2>/dev/null ||
            cp "$real" "$host32/usr/lib/i386-linux-gnu/"
        ln -sf "$(basename "$real")" "$host32/usr/lib/i386-linux-gnu/$lib"
    done
    echo /usr/lib/i386-linux-gnu > "$host32/etc/ld.so.conf"
    ldconfig -r "$host32"
    "$repo/.venv/bin/meson" setup --reconfigure --cross-file "$repo/cross/i386-linux-gnu.ini" \
        --cross-file "$work/i386-tree.ini" "$build32" "$repo/examples/demo" -Dhost="$host32" >/dev/null
    "$repo/.venv/bin/meson" compile -C "$build32" >/dev/null
    # The program's own i386 zlib and expat: the unpacked packages.
    local own="$tree/lib/i386-linux-gnu:$tree/usr/lib/i386-linux-gnu"
    echo "== 32-bit, without capsule (the program's own i386 libraries, LD_LIBRARY_PATH=$own):"
    LD_LIBRARY_PATH=$own "$build32/where"
    echo "== 32-bit, with the shims first (LD_LIBRARY_PATH=$build32:...):"
    LD_LIBRARY_PATH=$build32:$own "$build32/where"
    LD_LIBRARY_PATH=$build32:$own CAPSULE_DEBUG=path "$build32/where" 2>&1 >/dev/null | head -20
}

echo
echo "== the 32-bit part (i386): where built -m32, zlib and expat from Debian's i386 packages"
if [ -n "${DEMO_GLIBC:-}" ]; then
    blocker="DEMO_GLIBC=$DEMO_GLIBC is an x86_64 glibc; the 32-bit program needs i386's"
else
    blocker=$("$repo/.venv/bin/python" "$repo/scripts/arch_tree.py" i386 --why-not)
fi
if [ -n "$blocker" ]; then
    echo "== the 32-bit part skipped: $blocker"
else
    i386_part
fi

echo
echo "== the graphics example: a picture through the libEGL and libGLESv2 capsules"
GRAPHICS_DIR=$work/graphics CAPSULE_SKIP_BOOTSTRAP=1 bash "$repo/examples/graphics/run.sh"
