#!/usr/bin/env bash
# The graphics example end to end, headless: a "host" tree from this
# machine's graphics stack, a program "runtime" whose libexpat.so.1 Mesa
# cannot use, the example's shims, then a picture rendered through the
# libEGL and libGLESv2 capsules (EGL's surfaceless platform, llvmpipe, no X
# server) into $GRAPHICS_DIR/picture.png. Then the same 32-bit: egl_png
# built -m32 (cross/i386-linux-gnu.ini) through i386 capsules on i386 Mesa,
# unpacked from Debian's packages (graphics_trees.py --arch i386), into
# picture-i386.png; and for aarch64: built by clang
# (cross/aarch64-linux-gnu.ini), through aarch64 capsules on arm64 Mesa,
# run under qemu-aarch64, into picture-aarch64.png (64x64). Each of those
# parts says why it is skipped when it cannot run.
# DEMO_GLIBC=trixie|sid runs the programs under that glibc (see
# examples/demo/run.sh; the other architectures' parts are then skipped).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${GRAPHICS_DIR:-$repo/build-graphics}
# examples/demo/run.sh and the test suite bootstrap once themselves.
[ -n "${CAPSULE_SKIP_BOOTSTRAP:-}" ] || bash "$repo/scripts/bootstrap.sh"
venv=$repo/.venv/bin
launch=()
[ -z "${DEMO_GLIBC:-}" ] || launch=(python3 "$repo/scripts/glibc_tree.py" "$DEMO_GLIBC" --run)

rm -rf "$work" && mkdir -p "$work"
"$venv/python" "$repo/examples/graphics/graphics_trees.py" host "$work/host"
"$venv/python" "$repo/examples/graphics/graphics_trees.py" runtime "$work/runtime"
"$venv/meson" setup "$work/build" "$repo/examples/graphics" -Dhost="$work/host" >/dev/null
"$venv/meson" compile -C "$work/build" >/dev/null

picture=$work/picture.png
export DISPLAY=
echo "== without capsule, on the runtime (LD_LIBRARY_PATH=$work/runtime):"
if LD_LIBRARY_PATH=$work/runtime "${launch[@]}" "$work/build/egl_png" "$picture" 2>&1 | tail -n 1; then
    echo "unexpected: egl_png worked without capsule" >&2
    exit 1
fi
echo "== with the shims first (LD_LIBRARY_PATH=$work/build:$work/runtime):"
LD_LIBRARY_PATH=$work/build:$work/runtime "${launch[@]}" "$work/build/egl_png" "$picture"
echo "== where the capsule's code came from (capsule-shim ldd, some lines):"
LD_LIBRARY_PATH=$work/build:$work/runtime "$venv/capsule-shim" ldd -- \
    "${launch[@]}" "$work/build/egl_png" "$work/ldd.png" | grep -E "namespace|libEGL|swrast|LLVM|expat|OUTSIDE"

# The picture for a program of another architecture ($1: i386, aarch64), its
# lines headed "$2" (32-bit, aarch64): egl_png built with the architecture's
# cross file against its host tree (Debian's packages of the stack,
# graphics_trees.py --arch), through its capsules on its Mesa, into
# picture-$1.png; an aarch64 program runs under qemu-aarch64 (arch_tree.py
# --runner), where llvmpipe is slow: a 64x64 picture.
arch_picture() {
    local arch=$1 label=$2 wa=$work/$1 picture_a=$work/picture-$1.png
    local multiarch=$arch-linux-gnu runner size=()
    mkdir -p "$wa"
    if ! "$venv/python" "$repo/examples/graphics/graphics_trees.py" host "$wa/host" --arch "$arch" \
            --machine-file "$wa/host.ini" 2>"$wa/trees.err"; then
        echo "== the $label part skipped: $(tail -n 1 "$wa/trees.err")"
        return
    fi
    read -r -a runner <<<"$("$venv/python" "$repo/scripts/arch_tree.py" "$arch" --runner)"
    [ "${#runner[@]}" = 0 ] || size=(64)
    "$venv/python" "$repo/examples/graphics/graphics_trees.py" runtime "$wa/runtime" --arch "$arch" \
        --host "$wa/host"
    "$venv/meson" setup --cross-file "$repo/cross/$multiarch.ini" --cross-file "$wa/host.ini" \
        "$wa/build" "$repo/examples/graphics" -Dhost="$wa/host" >/dev/null
    "$venv/meson" compile -C "$wa/build" >/dev/null
    local how=${runner[*]:+ (under ${runner[*]})}
    # This machine has no graphics stack of that architecture: without
    # capsules the program uses the host tree's, behind the runtime.
    local stack=(LD_LIBRARY_PATH="$wa/runtime:$wa/host/usr/lib/$multiarch:$wa/host/lib/$multiarch"
                 LIBGL_DRIVERS_PATH="$wa/host/usr/lib/$multiarch/dri"
                 __EGL_VENDOR_LIBRARY_DIRS="$wa/host/usr/share/glvnd/egl_vendor.d")
    echo "== $label, without capsule, on the runtime (then the $arch host stack)$how:"
    if env "${stack[@]}" ${runner[@]+"${runner[@]}"} "$wa/build/egl_png" "$picture_a" \
            ${size[@]+"${size[@]}"} 2>&1 | tail -n 1; then
        echo "unexpected: the $label egl_png worked without capsule" >&2
        exit 1
    fi
    echo "== $label, with the shims first (LD_LIBRARY_PATH=$wa/build:$wa/runtime)$how:"
    LD_LIBRARY_PATH=$wa/build:$wa/runtime ${runner[@]+"${runner[@]}"} "$wa/build/egl_png" \
        "$picture_a" ${size[@]+"${size[@]}"}
    echo "== where the $label capsule's code came from (capsule-shim ldd, some lines):"
    LD_LIBRARY_PATH=$wa/build:$wa/runtime "$venv/capsule-shim" ldd -- ${runner[@]+"${runner[@]}"} \
        "$wa/build/egl_png" "$wa/ldd.png" ${size[@]+"${size[@]}"} |
        grep -E "namespace|libEGL|swrast|LLVM|expat|OUTSIDE"
}

# Each other architecture's part, or the sentence saying why it is skipped.
other_arch() {
    local arch=$1 label=$2 blocker
    if [ -n "${DEMO_GLIBC:-}" ]; then
        blocker="DEMO_GLIBC=$DEMO_GLIBC is an x86_64 glibc; the $label program needs $arch's"
    else
        blocker=$("$venv/python" "$repo/scripts/arch_tree.py" "$arch" --why-not)
    fi
    if [ -n "$blocker" ]; then
        echo "== the $label part skipped: $blocker"
    else
        arch_picture "$arch" "$label"
    fi
}

echo
echo "== the 32-bit part (i386): egl_png built -m32, through i386 capsules on i386 Mesa"
other_arch i386 32-bit
echo
echo "== the aarch64 part: egl_png built for aarch64 (clang), through aarch64 capsules on" \
     "arm64 Mesa, under qemu-aarch64"
other_arch aarch64 aarch64
