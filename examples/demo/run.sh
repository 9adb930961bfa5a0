#!/usr/bin/env bash
# The demo end to end on a fresh machine: install what is needed, make a
# "host" tree from this machine's zlib and expat, build shims for them with
# capsule.shim(), and run an unchanged program through the shims; then the
# same for a 32-bit build of the program (i386: built with
# cross/i386-linux-gnu.ini, zlib and expat from Debian's i386 packages,
# unpacked by scripts/arch_tree.py, nothing installed) and for an aarch64
# build (cross/aarch64-linux-gnu.ini: clang; Debian's arm64 packages; run
# under qemu-aarch64); then the graphics example renders a picture through
# capsules (examples/graphics/run.sh). Each other architecture's part says
# why it is skipped when it cannot run (no compiler or emulator for it, the
# packages cannot be fetched).
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

# The demo for a program of another architecture ($1: i386, aarch64),
# its lines headed "$2" (32-bit, aarch64): zlib and expat from Debian's
# packages of that architecture with their -dev files, unpacked (kept in
# build-arch/ and reused); the program and the shims built by Meson with the
# architecture's cross file and a machine file for the tree; an aarch64
# program run under qemu-aarch64 (arch_tree.py --runner).
arch_part() {
    local arch=$1 label=$2 tree py=$repo/.venv/bin/python
    local multiarch=$arch-linux-gnu host_a="$work/host-$arch" build_a="$work/build-$arch"
    if ! tree=$("$py" "$repo/scripts/arch_tree.py" "$arch" zlib1g libexpat1 \
            zlib1g-dev libexpat1-dev --machine-file "$work/$arch-tree.ini" 2>"$work/arch_tree.err")
    then
        echo "== the $label part skipped: no $arch host tree: $(tail -n 1 "$work/arch_tree.err")"
        return
    fi
    local runner
    read -r -a runner <<<"$("$py" "$repo/scripts/arch_tree.py" "$arch" --runner)"
    # The host tree: the real libraries, as for the 64-bit part, and its
    # ld.so.cache by the architecture's ldconfig.
    mkdir -p "$host_a/usr/lib/$multiarch"
    for lib in libz.so.1 libexpat.so.1; do
        real=/nonexistent
        for dir in "$tree/lib/$multiarch" "$tree/usr/lib/$multiarch"; do
            [ -e "$dir/$lib" ] && real=$(readlink -f "$dir/$lib") && break
        done
        cp -l "$real" "$host_a/usr/lib/$multiarch/" 2>/dev/null ||
            cp "$real" "$host_a/usr/lib/$multiarch/"
        ln -sf "$(basename "$real")" "$host_a/usr/lib/$multiarch/$lib"
    done
    "$py" "$repo/scripts/arch_tree.py" "$arch" --ldconfig "$host_a"
    "$repo/.venv/bin/meson" setup --reconfigure --cross-file "$repo/cross/$multiarch.ini" \
        --cross-file "$work/$arch-tree.ini" "$build_a" "$repo/examples/demo" -Dhost="$host_a" >/dev/null
    "$repo/.venv/bin/meson" compile -C "$build_a" >/dev/null
    # The program's own zlib and expat: the unpacked packages.
    local own="$tree/lib/$multiarch:$tree/usr/lib/$multiarch"
    local how=${runner[*]:+ (under ${runner[*]})}
    echo "== $label, without capsule (the program's own $arch libraries, LD_LIBRARY_PATH=$own)$how:"
    LD_LIBRARY_PATH=$own ${runner[@]+"${runner[@]}"} "$build_a/where"
    echo "== $label, with the shims first (LD_LIBRARY_PATH=$build_a:...)$how:"
    LD_LIBRARY_PATH=$build_a:$own ${runner[@]+"${runner[@]}"} "$build_a/where"
    LD_LIBRARY_PATH=$build_a:$own CAPSULE_DEBUG=path ${runner[@]+"${runner[@]}"} "$build_a/where" \
        2>&1 >/dev/null | head -20
}

# Each other architecture's part, or the sentence saying why it is skipped.
other_arch() {
    local arch=$1 label=$2 blocker
    if [ -n "${DEMO_GLIBC:-}" ]; then
        blocker="DEMO_GLIBC=$DEMO_GLIBC is an x86_64 glibc; the $label program needs $arch's"
    else
        blocker=$("$repo/.venv/bin/python" "$repo/scripts/arch_tree.py" "$arch" --why-not)
    fi
    if [ -n "$blocker" ]; then
        echo "== the $label part skipped: $blocker"
    else
        arch_part "$arch" "$label"
    fi
}

echo
echo "== the 32-bit part (i386): where built -m32, zlib and expat from Debian's i386 packages"
other_arch i386 32-bit
echo
echo "== the aarch64 part: where built for aarch64 (clang), run under qemu-aarch64," \
     "zlib and expat from Debian's arm64 packages"
other_arch aarch64 aarch64

echo
echo "== the graphics example: a picture through the libEGL and libGLESv2 capsules"
GRAPHICS_DIR=$work/graphics CAPSULE_SKIP_BOOTSTRAP=1 bash "$repo/examples/graphics/run.sh"
